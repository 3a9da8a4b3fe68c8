package gsurl

import "testing"

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		"gs://bkt":              "gs://bkt",
		"gs://bkt/":             "gs://bkt",
		"gs://my-bkt/a/b/":      "gs://my-bkt/a/b",
		"gs://b.k_t/wp-content": "gs://b.k_t/wp-content",
	} {
		r, err := Parse(in)
		if err != nil || r.String() != want {
			t.Errorf("Parse(%q) = %v, %v; want %s", in, r, err, want)
		}
	}
	for _, bad := range []string{"", "bkt/x", "s3://bkt", "gs://", "gs://BK", "gs://-bkt", "gs://bkt/a/../b", "gs://bkt/a//b"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): want error", bad)
		}
	}
}
