# SPDX-License-Identifier: MIT
# CHANGELOG.md's released sections ("## [X.Y.Z] - YYYY-MM-DD") as a Debian
# changelog, newest first: the packages are native (their version is
# volley's own, with no Debian revision), so their changelog.gz must be in
# Debian's format, and made from CHANGELOG.md it tells apt-listchanges
# users what a release holds. "Unreleased" and undated sections are left
# out: no package of theirs was released. Only POSIX awk (Debian's mawk).
#   awk -v maint='Name <address>' -f changelog.awk CHANGELOG.md

# The day of the week (0 Sunday) by Sakamoto's method: Debian's date line
# needs it, and awk has no calendar of its own.
function weekday(y, m, d,    t) {
    split("0 3 2 5 0 3 5 1 4 6 2 4", t, " ")
    if (m < 3)
        y--
    return (y + int(y / 4) - int(y / 100) + int(y / 400) + t[m] + d) % 7
}

function finish() {
    if (!open)
        return
    print ""
    print " -- " maint "  " date
    open = 0
}

function body(line) {
    if (blank && started)
        print ""
    print line
    blank = 0
    started = 1
}

BEGIN {
    if (maint == "") {
        print "changelog.awk: no maint (-v maint='Name <address>')" >"/dev/stderr"
        bad = 1
        exit 2
    }
    split("Sun Mon Tue Wed Thu Fri Sat", days, " ")
    split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", months, " ")
}

/^## / {
    finish()
    version = $2
    gsub(/^\[|\]$/, "", version)
    if (version !~ /^[0-9]+\.[0-9]+\.[0-9]+$/ || $3 != "-" ||
        $4 !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$/)
        next
    split($4, ymd, "-")
    date = sprintf("%s, %s %s %s 00:00:00 +0000", days[weekday(ymd[1] + 0, ymd[2] + 0,
        ymd[3] + 0) + 1], ymd[3], months[ymd[2] + 0], ymd[1])
    if (entries++)
        print ""
    print "volley (" version ") unstable; urgency=medium"
    print ""
    open = 1
    started = 0
    blank = 0
    next
}

!open { next }
/^[ \t]*$/ { blank = 1; next }
/^### / { body("  " substr($0, 5) ":"); next }
/^- / { body("  * " substr($0, 3)); next }
{ body("  " $0) }

END {
    if (bad)
        exit 2
    finish()
    if (!entries) {
        print "changelog.awk: no dated release section" >"/dev/stderr"
        exit 1
    }
}
