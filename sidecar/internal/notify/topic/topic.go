// Package topic parses Pub/Sub topic names (projects/PROJECT/topics/TOPIC) without the Pub/Sub client, so
// the configuration can validate --notifications on its own.
package topic

import (
	"fmt"
	"strings"
)

// Name is a parsed projects/PROJECT/topics/TOPIC.
type Name struct {
	Project string
	Topic   string
}

// String returns projects/PROJECT/topics/TOPIC ("" for the zero Name).
func (n Name) String() string {
	if n == (Name{}) {
		return ""
	}
	return "projects/" + n.Project + "/topics/" + n.Topic
}

// Parse parses projects/PROJECT/topics/TOPIC with the service's naming rules: a project ID is 6 to 30
// lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen (a domain-scoped
// project, example.com:proj, is allowed too); a topic ID is 3 to 255 letters, digits and - _ . ~ + %,
// starting with a letter and not starting with "goog".
func Parse(s string) (Name, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 4 || parts[0] != "projects" || parts[2] != "topics" {
		return Name{}, fmt.Errorf("%q: want projects/PROJECT/topics/TOPIC", s)
	}
	n := Name{Project: parts[1], Topic: parts[3]}
	if !validProject(n.Project) {
		return Name{}, fmt.Errorf("%q: invalid project ID %q", s, n.Project)
	}
	if !ValidID(n.Topic) {
		return Name{}, fmt.Errorf("%q: invalid topic ID %q (3-255 letters, digits and -_.~+%%, starting with a letter, not with goog)", s, n.Topic)
	}
	return n, nil
}

func validProject(p string) bool {
	if domain, id, ok := strings.Cut(p, ":"); ok {
		return domain != "" && !strings.ContainsAny(domain, "/ ") && validProject(id)
	}
	if len(p) < 6 || len(p) > 30 || p[0] < 'a' || p[0] > 'z' || p[len(p)-1] == '-' {
		return false
	}
	for _, c := range p {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// ValidID reports whether id is a valid topic or subscription ID.
func ValidID(id string) bool {
	if len(id) < 3 || len(id) > 255 || strings.HasPrefix(id, "goog") {
		return false
	}
	if c := id[0]; (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("-_.~+%", c):
		default:
			return false
		}
	}
	return true
}
