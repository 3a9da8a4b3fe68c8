//go:build e2e

package suite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/filesync/filesync/e2e/internal/cluster"
	"github.com/filesync/filesync/e2e/internal/harness"
)

// Bucket reads the example's bucket through fake-gcs-server's JSON API (a port-forward to its pod), so the
// suite sees exactly what a GCS client would.
type Bucket struct {
	gcs *harness.GCS
}

func newBucket(k *Kube) Bucket {
	return Bucket{gcs: &harness.GCS{
		BaseURL:  "http://" + cluster.PlaceholderHost,
		HTTP:     &http.Client{Transport: forwardTransport{k: k}},
		PageSize: 1000,
	}}
}

// forwardTransport sends each request to fake-gcs-server's current Ready pod through a fresh port-forward.
type forwardTransport struct{ k *Kube }

func (f forwardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	pods, err := f.k.PodsOf(ctx, gcsDeployment, func(p corev1.Pod) bool { return p.DeletionTimestamp == nil && cluster.PodReady(p) })
	if err != nil {
		return nil, err
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("no ready %s pod", gcsDeployment)
	}
	status, body, err := f.k.Do(ctx, pods[0].Name, gcsPort, req)
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{},
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req}, nil
}

// List returns the objects under prefix (a full object-name prefix such as "wp-content/uploads/"), keyed by
// their name without remotePrefix; filesync's own objects (.filesync/, conflict copies) are left out.
func (b Bucket) List(ctx context.Context, prefix string) (map[string]FileInfo, error) {
	objs, err := b.gcs.List(ctx, bucket, prefix)
	if err != nil {
		return nil, err
	}
	out := map[string]FileInfo{}
	for _, o := range objs {
		rel := strings.TrimPrefix(o.Name, remotePrefix)
		if strings.HasPrefix(rel, ".filesync/") || strings.Contains(rel, "/.filesync/") {
			continue
		}
		out[rel] = FileInfo{MD5: o.MD5, Size: o.Size, CTime: o.Created}
	}
	return out, nil
}

// Read returns the content of object remotePrefix+rel, and false if it does not exist.
func (b Bucket) Read(ctx context.Context, rel string) ([]byte, bool, error) {
	data, err := b.gcs.Read(ctx, bucket, remotePrefix+rel)
	switch {
	case harness.IsNotFound(err):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("read gs://%s/%s%s: %w", bucket, remotePrefix, rel, err)
	}
	return data, true, nil
}
