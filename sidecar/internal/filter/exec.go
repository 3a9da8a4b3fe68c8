package filter

import (
	"path"
	"strconv"
	"strings"
)

// Executable reports whether a web server could run the file rel (its last segment) as code, or obey it
// as its configuration, in the Apache and PHP setups a media directory is served by; case does not
// matter, nor trailing dots or spaces. docs/design.md ("Executable names") lists what is and is not
// covered. It is the read-through's 403 and, under --no-exec globs, Filter.NoExec.
func Executable(rel string) bool {
	base := strings.ToLower(path.Base(rel))
	switch strings.TrimRight(base, ". ") {
	case ".htaccess", ".htpasswd", ".user.ini", "php.ini":
		return true
	}
	// Apache's mod_mime reads every dot-separated part of a name after the first as an extension
	// (x.php.jpg is PHP where AddHandler maps .php), so any part may make the file code.
	parts := strings.Split(base, ".")
	for _, ext := range parts[1:] {
		if execExt(strings.TrimRight(ext, " ")) {
			return true
		}
	}
	return false
}

// execExt reports whether ext (lower case, no dot) is the extension of code a web server runs: PHP in
// all its spellings (php, php3 ... php8 and any other digits, phtml, pht, phar, phps), CGI scripts
// (cgi, pl: with ExecCGI, which .htaccess can turn on) and server-side includes (shtml: `<!--#exec -->`).
func execExt(ext string) bool {
	switch ext {
	case "php", "phtml", "pht", "phar", "phps", "cgi", "pl", "shtml":
		return true
	}
	if digits, ok := strings.CutPrefix(ext, "php"); ok {
		_, err := strconv.ParseUint(digits, 10, 32)
		return err == nil
	}
	return false
}
