package mediatype

import "testing"

// TestOf: by the last segment's extension, case-insensitively; Default for none or an unknown one (never a
// guess from a folder's name or from the bytes).
func TestOf(t *testing.T) {
	for name, want := range map[string]string{
		"a.css": "text/css", "A.CSS": "text/css", "x/y.Woff2": "font/woff2", "a.tar.gz": Default,
		"style.css/readme": Default, "noext": Default, ".svg": "image/svg+xml", "a.": Default,
		"photo.JPEG": "image/jpeg", "a.css.b.1700000000": Default,
	} {
		if got := Of(name); got != want {
			t.Errorf("Of(%q) = %q, want %q", name, got, want)
		}
	}
}
