package filter

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a.txt", true},
		{"2026/11/photo.jpg", true},
		{"uploads/ünïcode and spaces.png", true},
		{"..", false},
		{"../etc/passwd", false},
		{"a/../../b", false},
		{"a/./b", false},
		{"/etc/passwd", false},
		{"a//b", false},
		{"dir/", false},
		{"", false},
		{"a\x00b", false},
		{`..\..\windows`, false},
		{`a\b`, false},
		{"C:evil", false},
		{"line\nbreak", false},
		{"bad\xffutf8.jpg", false},
		{strings.Repeat("a", 255) + "/ok", true},
		{"uploads/" + strings.Repeat("a", 256), false},
	} {
		err := CheckName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrUnsafe) {
			t.Errorf("CheckName(%q) = %v, want ErrUnsafe", tc.name, err)
		}
	}
}

func TestExcluded(t *testing.T) {
	f, err := New([]string{"cache/**", "*.tmp", "**/node_modules", "upgrade", "uploads/*/private/**", "tmp/", "/debug.log"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rel  string
		want bool
	}{
		{"cache/a", true},
		{"cache/x/y/z", true},
		{"cache", true},
		{"cachex/a", false},
		{"a.tmp", true},
		{"dir/a.tmp", true}, // no slash: any depth, as in .gitignore
		{"upgrade", true},
		{"plugins/upgrade/x.zip", true},
		{"tmp/x", true}, // trailing slash: the directory and all below it
		{"a/tmp/x/y", true},
		{"tmp", false}, // a file named tmp is not a directory
		{"debug.log", true},
		{"sub/debug.log", false}, // anchored by the leading slash
		{"node_modules/x.js", true},
		{"plugins/foo/node_modules/x.js", true},
		{"upgrade/wordpress.zip", true},
		{"uploads/2026/private/a.jpg", true},
		{"uploads/2026/11/a.jpg", false},
		{"themes/x/style.css", false},
	} {
		if got := f.Excluded(tc.rel); got != tc.want {
			t.Errorf("Excluded(%q) = %v, want %v", tc.rel, got, tc.want)
		}
	}
}

func TestSkipDir(t *testing.T) {
	f, _ := New([]string{"tmp/", "cache"})
	if !f.SkipDir("tmp") || !f.SkipDir("x/tmp") || !f.SkipDir("cache") || f.SkipDir("uploads") || !f.SkipDir(".filesync") {
		t.Fatal("SkipDir")
	}
}

func TestNewRejectsBadGlob(t *testing.T) {
	for _, g := range []string{"a/[b", "/", "a//b"} {
		if _, err := New([]string{g}); err == nil {
			t.Errorf("New(%q): want error", g)
		}
	}
}

func TestInternal(t *testing.T) {
	for rel, want := range map[string]bool{
		".filesync":                 true,
		".filesync/conflicts/a.1.2": true,
		".filesync/tmp/0123abcd":    true,
		"a/.filesync-tmp-123":       false, // an app file like any other
		".filesyncx":                false,
		"uploads/a.jpg":             false,
		"uploads/.filesync/x":       false,
	} {
		if got := Internal(rel); got != want {
			t.Errorf("Internal(%q) = %v, want %v", rel, got, want)
		}
	}
}

// TestNoExec: executable names under the --no-exec globs are left out (NoExec, and so Excluded and Skip);
// other names there, and executable names elsewhere (plugins), are not; directories are never.
func TestNoExec(t *testing.T) {
	base, err := New([]string{"cache/**"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := base.WithNoExec([]string{"uploads/**", "media/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rel            string
		noExec, exclud bool
	}{
		{"uploads/x.php", true, true},
		{"uploads/2026/11/X.PHP", true, true},
		{"uploads/x.pHp7", true, true},
		{"uploads/x.php.jpg", true, true},
		{"uploads/x.php.", true, true},
		{"uploads/.htaccess", true, true},
		{"uploads/.user.ini", true, true},
		{"uploads/x.phar", true, true},
		{"uploads/x.phtml", true, true},
		{"media/a/b.php", true, true},
		{"uploads/photo.jpg", false, false},
		{"uploads/x.php/photo.jpg", false, false},
		{"plugins/akismet/akismet.php", false, false}, // code that must sync
		{".htaccess", false, false},
		{"cache/x.php", false, true}, // excluded anyway, not for being code
	} {
		if got := f.NoExec(tc.rel); got != tc.noExec {
			t.Errorf("NoExec(%q) = %v, want %v", tc.rel, got, tc.noExec)
		}
		if got := f.Excluded(tc.rel); got != tc.exclud {
			t.Errorf("Excluded(%q) = %v, want %v", tc.rel, got, tc.exclud)
		}
		if got := f.Skip(tc.rel); got != tc.exclud {
			t.Errorf("Skip(%q) = %v, want %v", tc.rel, got, tc.exclud)
		}
	}
	if f.SkipDir("uploads") || f.SkipDir("uploads/x.php") || !f.SkipDir("cache") {
		t.Error("SkipDir: --no-exec leaves directories alone")
	}
	if base.NoExec("uploads/x.php") || base.Excluded("uploads/x.php") {
		t.Error("WithNoExec changed the filter it was called on")
	}
	var none *Filter
	if none.NoExec("uploads/x.php") {
		t.Error("a nil filter leaves out code")
	}
	if _, err := base.WithNoExec([]string{"a/[b"}); err == nil {
		t.Error("WithNoExec took a bad glob")
	}
}

func TestRoot(t *testing.T) {
	f, err := New([]string{"plugins/*/", "themes/*/", "/mu-plugins/", "languages"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ rel, root string }{
		{"plugins/akismet/akismet.php", "plugins/akismet"},
		{"plugins/akismet/inc/a/b.php", "plugins/akismet"},
		{"plugins/hello.php", ""}, // a file directly in plugins/ is no tree
		{"themes/t/style.css", "themes/t"},
		{"mu-plugins/loader.php", "mu-plugins"},
		{"languages/plugins/de_DE.mo", "languages"},
		{"uploads/2026/12/a.jpg", ""},
		{"plugins", ""},
	} {
		root, ok := f.Root(c.rel)
		if root != c.root || ok != (c.root != "") {
			t.Errorf("Root(%q) = %q, %v; want %q", c.rel, root, ok, c.root)
		}
	}
	var none *Filter
	if _, ok := none.Root("plugins/a/b"); ok {
		t.Error("a nil filter has a root")
	}
}
