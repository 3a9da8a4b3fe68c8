//go:build e2e

package suite

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/filesync/filesync/e2e/internal/cluster"
)

// Kube is the cluster's client of the example's pods (cluster.Kube) with the suite's reading and writing of
// a replica's wp-content.
type Kube struct{ *cluster.Kube }

// FileInfo is what the suite knows of a file in a replica's wp-content (or of an object in the bucket).
type FileInfo struct {
	MD5   string    // hex
	Size  int64     // bytes
	CTime time.Time // last status change in the replica; for an object, when its generation was written
}

// WriteFile writes data to wp-content/rel in pod's WordPress container, like the app would (plain write, no
// temp file), creating missing parent directories, and hands the file and the directories it created to
// the web server's user (uid 33), so that WordPress can still write next to them.
func (k *Kube) WriteFile(ctx context.Context, pod, rel string, data []byte) error {
	const script = `set -e
f="$1/$2"; d=$(dirname "$f"); created=""
p="$d"; while [ ! -d "$p" ]; do created="$p $created"; p=$(dirname "$p"); done
mkdir -p "$d"
cat > "$f"
chown 33:33 "$f" $created 2>/dev/null || true`
	if _, err := k.Exec(ctx, pod, appContainer, data, "sh", "-c", script, "sh", wpContent, rel); err != nil {
		return fmt.Errorf("write %s on %s: %w", rel, pod, err)
	}
	return nil
}

// ReadFile returns the content of wp-content/rel in pod, and false if it does not exist.
func (k *Kube) ReadFile(ctx context.Context, pod, rel string) ([]byte, bool, error) {
	out, err := k.Exec(ctx, pod, appContainer, nil, "sh", "-c", `[ -f "$1" ] || exit 3; cat -- "$1"`, "sh", wpContent+"/"+rel)
	var exit utilexec.ExitError
	if errors.As(err, &exit) && exit.ExitStatus() == 3 {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s on %s: %w", rel, pod, err)
	}
	return out, true, nil
}

// Tree lists the regular, non-hidden files under wp-content/dir in pod, keyed by their path relative to
// wp-content (which is also their object name without the remote prefix).
func (k *Kube) Tree(ctx context.Context, pod, dir string) (map[string]FileInfo, error) {
	const script = `cd "$1" || exit 0
[ -d "$2" ] || exit 0
find "$2" -type f ! -name '.*' -printf 'C %C@ %s %p\n'
find "$2" -type f ! -name '.*' -exec md5sum {} +`
	out, err := k.Exec(ctx, pod, appContainer, nil, "sh", "-c", script, "sh", wpContent, dir)
	if err != nil {
		return nil, fmt.Errorf("list %s on %s: %w", dir, pod, err)
	}
	tree := map[string]FileInfo{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "C "); ok {
			f := strings.SplitN(rest, " ", 3)
			if len(f) != 3 {
				return nil, fmt.Errorf("list %s on %s: bad line %q", dir, pod, line)
			}
			secs, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return nil, fmt.Errorf("list %s on %s: ctime %q: %w", dir, pod, f[0], err)
			}
			size, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("list %s on %s: size %q: %w", dir, pod, f[1], err)
			}
			fi := tree[f[2]]
			fi.CTime = time.Unix(0, int64(secs*1e9))
			fi.Size = size
			tree[f[2]] = fi
			continue
		}
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			return nil, fmt.Errorf("list %s on %s: bad line %q", dir, pod, line)
		}
		fi := tree[name]
		fi.MD5 = sum
		tree[name] = fi
	}
	return tree, sc.Err()
}

// containerStarted returns when the named container (app or init) of pod last started running.
func containerStarted(p corev1.Pod, name string) (time.Time, bool) {
	for _, s := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
		if s.Name == name && s.State.Running != nil {
			return s.State.Running.StartedAt.Time, true
		}
	}
	return time.Time{}, false
}

// restarts returns the restart count of the named container of pod.
func restarts(p corev1.Pod, name string) int32 {
	for _, s := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
		if s.Name == name {
			return s.RestartCount
		}
	}
	return -1
}
