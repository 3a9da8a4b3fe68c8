package topic

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Name
		ok   bool
	}{
		{"projects/my-project/topics/filesync-media", Name{"my-project", "filesync-media"}, true},
		{"projects/example.com:my-proj/topics/T.1~x+y%z_", Name{"example.com:my-proj", "T.1~x+y%z_"}, true},
		{"projects/test-project/topics/abc", Name{"test-project", "abc"}, true},
		{"", Name{}, false},
		{"my-topic", Name{}, false},
		{"projects/my-project/topics/", Name{}, false},
		{"projects/my-project/subscriptions/abc", Name{}, false},
		{"projects//topics/abc", Name{}, false},
		{"projects/My-Project/topics/abc", Name{}, false}, // project IDs are lowercase
		{"projects/short/topics/abc", Name{}, false},      // 6 characters at least
		{"projects/my-project-/topics/abc", Name{}, false},
		{"projects/my-project/topics/ab", Name{}, false},
		{"projects/my-project/topics/1abc", Name{}, false},
		{"projects/my-project/topics/goog-abc", Name{}, false},
		{"projects/my-project/topics/a b c", Name{}, false},
		{"projects/my-project/topics/abc/extra", Name{}, false},
		{"//pubsub.googleapis.com/projects/my-project/topics/abc", Name{}, false},
	} {
		got, err := Parse(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok && got.String() != tc.in {
			t.Errorf("%q: String() = %q", tc.in, got.String())
		}
	}
	if (Name{}).String() != "" {
		t.Error("the zero Name prints as non-empty")
	}
}
