package harness

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// PinsFile is the file of pinned versions and image names, relative to the repository root.
const PinsFile = "hack/versions.env"

// RepoRoot returns the repository root: the nearest directory at or above dir that holds go.work and
// hack/versions.env.
func RepoRoot(dir string) (string, error) {
	start, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("repo root: %w", err)
	}
	for d := start; ; d = filepath.Dir(d) {
		if isFile(filepath.Join(d, "go.work")) && isFile(filepath.Join(d, PinsFile)) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("repo root: no go.work and %s above %s", PinsFile, start)
		}
	}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

var pinLine = regexp.MustCompile(`^([A-Z][A-Z0-9_]*)=(\S+)$`)

// LoadPins reads root/hack/versions.env: KEY=value lines, # comments, `${KEY}` referring to a key above.
func LoadPins(root string) (map[string]string, error) {
	path := filepath.Join(root, PinsFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pins: %w", err)
	}
	defer f.Close()
	pins := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := pinLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("%s:%d: want KEY=value, got %q", path, n, line)
		}
		var undefined []string
		value := os.Expand(m[2], func(k string) string {
			v, ok := pins[k]
			if !ok {
				undefined = append(undefined, k)
			}
			return v
		})
		if len(undefined) > 0 {
			return nil, fmt.Errorf("%s:%d: %s refers to %v, not defined above it", path, n, m[1], undefined)
		}
		if _, dup := pins[m[1]]; dup {
			return nil, fmt.Errorf("%s:%d: %s is pinned twice", path, n, m[1])
		}
		pins[m[1]] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("pins: %w", err)
	}
	return pins, nil
}
