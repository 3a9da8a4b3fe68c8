//go:build e2e

package suite

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Bucket reads the example's bucket through fake-gcs-server's JSON API (a port-forward to its pod), so the
// suite sees exactly what a GCS client would.
type Bucket struct {
	k *Kube
}

func (b Bucket) pod(ctx context.Context) (string, error) {
	pods, err := b.k.podsOf(ctx, gcsDeployment, func(p corev1.Pod) bool { return p.DeletionTimestamp == nil && podReady(p) })
	if err != nil {
		return "", err
	}
	if len(pods) == 0 {
		return "", fmt.Errorf("no ready %s pod", gcsDeployment)
	}
	return pods[0].Name, nil
}

// List returns the objects under prefix (a full object-name prefix such as "wp-content/uploads/"), keyed by
// their name without remotePrefix; filesync's own objects (.filesync/, conflict copies) are left out.
func (b Bucket) List(ctx context.Context, prefix string) (map[string]FileInfo, error) {
	pod, err := b.pod(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]FileInfo{}
	token := ""
	for {
		q := url.Values{"prefix": {prefix}, "maxResults": {"1000"}}
		if token != "" {
			q.Set("pageToken", token)
		}
		status, body, err := b.k.Get(ctx, pod, gcsPort, "", "/storage/v1/b/"+bucket+"/o?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("list gs://%s/%s: %w", bucket, prefix, err)
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("list gs://%s/%s: HTTP %d: %s", bucket, prefix, status, body)
		}
		var page struct {
			Items []struct {
				Name    string `json:"name"`
				Size    string `json:"size"`
				MD5Hash string `json:"md5Hash"`
			} `json:"items"`
			NextPageToken string `json:"nextPageToken"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("list gs://%s/%s: %w", bucket, prefix, err)
		}
		for _, it := range page.Items {
			rel := strings.TrimPrefix(it.Name, remotePrefix)
			if strings.HasPrefix(rel, ".filesync/") || strings.Contains(rel, "/.filesync/") {
				continue
			}
			sum, err := base64.StdEncoding.DecodeString(it.MD5Hash)
			if err != nil {
				return nil, fmt.Errorf("object %s md5Hash %q: %w", it.Name, it.MD5Hash, err)
			}
			size, _ := strconv.ParseInt(it.Size, 10, 64)
			out[rel] = FileInfo{MD5: hex.EncodeToString(sum), Size: size}
		}
		if page.NextPageToken == "" {
			return out, nil
		}
		token = page.NextPageToken
	}
}

// Read returns the content of object remotePrefix+rel, and false if it does not exist.
func (b Bucket) Read(ctx context.Context, rel string) ([]byte, bool, error) {
	pod, err := b.pod(ctx)
	if err != nil {
		return nil, false, err
	}
	name := remotePrefix + rel
	status, body, err := b.k.Get(ctx, pod, gcsPort, "", "/storage/v1/b/"+bucket+"/o/"+url.PathEscape(name)+"?alt=media")
	switch {
	case err != nil:
		return nil, false, fmt.Errorf("read gs://%s/%s: %w", bucket, name, err)
	case status == http.StatusNotFound:
		return nil, false, nil
	case status != http.StatusOK:
		return nil, false, fmt.Errorf("read gs://%s/%s: HTTP %d: %s", bucket, name, status, body)
	}
	return body, true, nil
}
