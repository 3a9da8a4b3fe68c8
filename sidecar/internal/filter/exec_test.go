package filter

import "testing"

func TestExecutable(t *testing.T) {
	for _, tc := range []struct {
		rel  string
		want bool
	}{
		{"uploads/x.php", true},
		{"uploads/X.PHP", true},
		{"uploads/x.pHp7", true},
		{"x.php3", true},
		{"x.php56", true},
		{"x.phtml", true},
		{"x.pht", true},
		{"x.phar", true},
		{"x.phps", true},
		{"uploads/x.php.jpg", true}, // AddHandler: every extension counts
		{"x.tar.phtml.gz", true},
		{"x.php.", true}, // the trailing dot
		{"x.php..", true},
		{"x.php ", true},
		{".php", true},
		{"uploads/.htaccess", true},
		{"uploads/.HTAccess", true},
		{".htaccess.", true},
		{".htpasswd", true},
		{"uploads/2026/.user.ini", true},
		{"php.ini", true},
		{"x.cgi", true},
		{"x.pl", true},
		{"x.shtml", true},
		{"uploads/photo.jpg", false},
		{"uploads/php.jpg", false}, // the name, not an extension
		{"uploads/x.php/photo.jpg", false},
		{"x.phpx", false},
		{"x.php-7", false},
		{"x.phpt.txt", false},
		{"x.htaccess", false},
		{"htaccess", false},
		{"x.html", false},
		{"x.svg", false},
		{"x.js", false},
		{"x.py", false},
		{"x.inc", false},
		{"x.ini", false},
	} {
		if got := Executable(tc.rel); got != tc.want {
			t.Errorf("Executable(%q) = %v, want %v", tc.rel, got, tc.want)
		}
	}
}
