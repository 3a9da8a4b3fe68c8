package manifests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"strings"

	"sigs.k8s.io/yaml"
)

// ErrNoKubectl means kubectl is not on PATH.
var ErrNoKubectl = errors.New("kubectl not found on PATH")

// KubectlKustomize renders dir with `kubectl kustomize`, the renderer users and Tilt run.
func KubectlKustomize(ctx context.Context, dir string) ([]byte, error) {
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		return nil, ErrNoKubectl
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "kustomize", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("kubectl kustomize %s: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Docs splits a YAML stream into its documents, each decoded into generic maps (empty documents dropped).
func Docs(stream []byte) ([]map[string]any, error) {
	var out []map[string]any
	for i, doc := range splitDocs(stream) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// splitDocs cuts a stream at lines that are exactly "---".
func splitDocs(stream []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	for line := range bytes.Lines(stream) {
		if string(bytes.TrimRight(line, "\r\n")) == "---" {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.Write(line)
	}
	return append(docs, cur.Bytes())
}

// DiffDocs compares two YAML streams object by object, in order, and describes the first difference
// ("" when they hold the same objects).
func DiffDocs(want, got []byte) (string, error) {
	a, err := Docs(want)
	if err != nil {
		return "", fmt.Errorf("first stream: %w", err)
	}
	b, err := Docs(got)
	if err != nil {
		return "", fmt.Errorf("second stream: %w", err)
	}
	for i := range min(len(a), len(b)) {
		if !reflect.DeepEqual(a[i], b[i]) {
			ya, _ := yaml.Marshal(a[i])
			yb, _ := yaml.Marshal(b[i])
			return fmt.Sprintf("object %d (%s) differs:\n--- first\n%s\n--- second\n%s", i, describe(a[i]), ya, yb), nil
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("first has %d objects, second %d", len(a), len(b)), nil
	}
	return "", nil
}

func describe(m map[string]any) string {
	md, _ := m["metadata"].(map[string]any)
	return fmt.Sprintf("%v %v", m["kind"], md["name"])
}
