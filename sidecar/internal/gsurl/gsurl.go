// Package gsurl names where the sync keeps its objects: gs://BUCKET[/PREFIX]. It parses and checks the
// location without the storage SDK, so configuration does not import it.
package gsurl

import (
	"fmt"
	"strings"
)

// Location is a parsed gs://BUCKET[/PREFIX].
type Location struct {
	Bucket string
	Prefix string // without leading or trailing slash; may be empty
}

func (r Location) String() string {
	if r.Prefix == "" {
		return "gs://" + r.Bucket
	}
	return "gs://" + r.Bucket + "/" + r.Prefix
}

// Parse parses gs://BUCKET[/PREFIX]; the error names what is wrong with it.
func Parse(s string) (Location, error) {
	rest, ok := strings.CutPrefix(s, "gs://")
	if !ok {
		return Location{}, fmt.Errorf("%q: want gs://BUCKET[/PREFIX]", s)
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	prefix = strings.Trim(prefix, "/")
	if !validBucket(bucket) {
		return Location{}, fmt.Errorf("%q: invalid bucket name %q", s, bucket)
	}
	if strings.Contains(prefix, "//") || strings.ContainsAny(prefix, "\x00\r\n") {
		return Location{}, fmt.Errorf("%q: invalid prefix %q", s, prefix)
	}
	for _, seg := range strings.Split(prefix, "/") {
		if seg == "." || seg == ".." {
			return Location{}, fmt.Errorf("%q: invalid prefix %q", s, prefix)
		}
	}
	return Location{Bucket: bucket, Prefix: prefix}, nil
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 222 {
		return false
	}
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.':
			if i == 0 || i == len(b)-1 {
				return false
			}
		default:
			return false
		}
	}
	return true
}
