package harness

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// GCS is a client of the GCS JSON API as fake-gcs-server serves it: the few calls the kit's tests make to
// seed, inspect and empty buckets outside the program under test.
type GCS struct {
	// BaseURL is the server's address, such as http://127.0.0.1:4443.
	BaseURL string
	// HTTP sends the requests (nil: http.DefaultClient).
	HTTP *http.Client
	// PageSize is a listing's maxResults (0: the server's default).
	PageSize int
}

// Object is one entry of a bucket listing.
type Object struct {
	Name string
	Size int64
	// MD5 is the content's MD5 in lowercase hex.
	MD5 string
	// Created is when this generation was written (the server's clock).
	Created time.Time
}

// HTTPError is an answer outside 2xx.
type HTTPError struct {
	Code int
	Body string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Code, strings.TrimSpace(e.Body))
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	var h *HTTPError
	return errors.As(err, &h) && h.Code == http.StatusNotFound
}

// do sends one request and returns the body of a 2xx answer (an *HTTPError otherwise).
func (g *GCS) do(ctx context.Context, method, pathAndQuery, contentType string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.BaseURL+pathAndQuery, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, pathAndQuery, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	c := g.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, pathAndQuery, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", method, pathAndQuery, err)
	}
	if resp.StatusCode/100 != 2 {
		const most = 600
		if len(data) > most {
			data = append(data[:most:most], "…"...)
		}
		return nil, fmt.Errorf("%s %s: %w", method, pathAndQuery, &HTTPError{Code: resp.StatusCode, Body: string(data)})
	}
	return data, nil
}

func objectPath(bucket, name string) string {
	return "/storage/v1/b/" + url.PathEscape(bucket) + "/o/" + url.PathEscape(name)
}

// CreateBucket creates a bucket.
func (g *GCS) CreateBucket(ctx context.Context, name string) error {
	body, err := json.Marshal(map[string]string{"name": name})
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	_, err = g.do(ctx, http.MethodPost, "/storage/v1/b?project=test-project", "application/json", body)
	return err
}

// Upload writes an object (a simple media upload), as another replica or an operator would.
func (g *GCS) Upload(ctx context.Context, bucket, name string, data []byte) error {
	q := url.Values{"uploadType": {"media"}, "name": {name}}
	_, err := g.do(ctx, http.MethodPost, "/upload/storage/v1/b/"+url.PathEscape(bucket)+"/o?"+q.Encode(),
		"application/octet-stream", data)
	return err
}

// Read returns an object's content; a missing object is an error for which IsNotFound holds.
func (g *GCS) Read(ctx context.Context, bucket, name string) ([]byte, error) {
	return g.do(ctx, http.MethodGet, objectPath(bucket, name)+"?alt=media", "", nil)
}

// Exists reports whether the object is in the bucket.
func (g *GCS) Exists(ctx context.Context, bucket, name string) (bool, error) {
	_, err := g.do(ctx, http.MethodGet, objectPath(bucket, name)+"?fields=name", "", nil)
	switch {
	case err == nil:
		return true, nil
	case IsNotFound(err):
		return false, nil
	}
	return false, err
}

// Delete deletes an object; a missing object is an error for which IsNotFound holds.
func (g *GCS) Delete(ctx context.Context, bucket, name string) error {
	_, err := g.do(ctx, http.MethodDelete, objectPath(bucket, name), "", nil)
	return err
}

// DeleteBucket deletes an empty bucket.
func (g *GCS) DeleteBucket(ctx context.Context, bucket string) error {
	_, err := g.do(ctx, http.MethodDelete, "/storage/v1/b/"+url.PathEscape(bucket), "", nil)
	return err
}

// List returns every object whose name starts with prefix (the whole bucket when prefix is empty), page by
// page.
func (g *GCS) List(ctx context.Context, bucket, prefix string) ([]Object, error) {
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if g.PageSize > 0 {
		q.Set("maxResults", strconv.Itoa(g.PageSize))
	}
	objs, _, err := g.ListQuery(ctx, bucket, q)
	return objs, err
}

// ListQuery lists bucket with the objects.list parameters q (prefix, delimiter, maxResults, projection:
// pageToken is its own), every page, and returns the objects and the folders (prefixes) they gave.
func (g *GCS) ListQuery(ctx context.Context, bucket string, q url.Values) ([]Object, []string, error) {
	var (
		objs     []Object
		prefixes []string
	)
	q = maps.Clone(q)
	for {
		data, err := g.do(ctx, http.MethodGet, "/storage/v1/b/"+url.PathEscape(bucket)+"/o?"+q.Encode(), "", nil)
		if err != nil {
			return nil, nil, fmt.Errorf("list gs://%s/%s: %w", bucket, q.Get("prefix"), err)
		}
		var page struct {
			Items []struct {
				Name    string    `json:"name"`
				Size    string    `json:"size"`
				MD5Hash string    `json:"md5Hash"`
				Created time.Time `json:"timeCreated"`
			} `json:"items"`
			Prefixes      []string `json:"prefixes"`
			NextPageToken string   `json:"nextPageToken"`
		}
		if err := json.Unmarshal(data, &page); err != nil {
			return nil, nil, fmt.Errorf("list gs://%s/%s: %w", bucket, q.Get("prefix"), err)
		}
		for _, it := range page.Items {
			size, err := strconv.ParseInt(it.Size, 10, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("object %s: size %q: %w", it.Name, it.Size, err)
			}
			sum, err := base64.StdEncoding.DecodeString(it.MD5Hash)
			if err != nil {
				return nil, nil, fmt.Errorf("object %s: md5Hash %q: %w", it.Name, it.MD5Hash, err)
			}
			objs = append(objs, Object{Name: it.Name, Size: size, MD5: hex.EncodeToString(sum), Created: it.Created})
		}
		prefixes = append(prefixes, page.Prefixes...)
		if page.NextPageToken == "" {
			return objs, prefixes, nil
		}
		q.Set("pageToken", page.NextPageToken)
	}
}

// Attrs are the attributes of one object that other tools set and read.
type Attrs struct {
	Name            string            `json:"name"`
	ContentType     string            `json:"contentType,omitempty"`
	CacheControl    string            `json:"cacheControl,omitempty"`
	ContentEncoding string            `json:"contentEncoding,omitempty"`
	Metadata        map[string]string `json:"metadata,omitempty"`
	Size            int64             `json:"size,string,omitempty"`
	Generation      int64             `json:"generation,string,omitempty"`
	Metageneration  int64             `json:"metageneration,string,omitempty"`
}

// Attrs returns an object's attributes; a missing object is an error for which IsNotFound holds.
func (g *GCS) Attrs(ctx context.Context, bucket, name string) (Attrs, error) {
	data, err := g.do(ctx, http.MethodGet, objectPath(bucket, name), "", nil)
	if err != nil {
		return Attrs{}, err
	}
	var a Attrs
	if err := json.Unmarshal(data, &a); err != nil {
		return Attrs{}, fmt.Errorf("object %s: %w", name, err)
	}
	return a, nil
}

// UploadWith writes an object with attributes (a multipart upload: a.Name, ContentType, CacheControl,
// ContentEncoding, Metadata), as another tool would.
func (g *GCS) UploadWith(ctx context.Context, bucket string, a Attrs, data []byte) error {
	meta, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("upload %s: %w", a.Name, err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct {
		contentType string
		data        []byte
	}{{"application/json; charset=UTF-8", meta}, {cmp.Or(a.ContentType, "application/octet-stream"), data}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {part.contentType}})
		if err != nil {
			return fmt.Errorf("upload %s: %w", a.Name, err)
		}
		if _, err := w.Write(part.data); err != nil {
			return fmt.Errorf("upload %s: %w", a.Name, err)
		}
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("upload %s: %w", a.Name, err)
	}
	_, err = g.do(ctx, http.MethodPost, "/upload/storage/v1/b/"+url.PathEscape(bucket)+"/o?uploadType=multipart",
		"multipart/related; boundary="+mw.Boundary(), body.Bytes())
	return err
}
