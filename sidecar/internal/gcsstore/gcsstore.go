// Package gcsstore is the bucket side of the sync: list, read, write and delete objects under one prefix,
// with generation preconditions and CRC32C. It is the only package that imports the GCS SDK.
package gcsstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/filesync/filesync/sidecar/internal/gsurl"
	"github.com/filesync/filesync/sidecar/internal/mediatype"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// Sentinel errors for decisions.
var (
	// ErrPrecondition: the object's generation was not the one required (HTTP 412): someone else wrote first.
	ErrPrecondition = errors.New("generation precondition failed")
	// ErrNotFound: no such object (or generation).
	ErrNotFound = errors.New("object not found")
	// ErrMismatch: the object the bucket stored is not what was sent (size or CRC32C differ). GCS refuses
	// such writes itself; this guards against servers that do not.
	ErrMismatch = errors.New("stored object differs from what was sent")
	// ErrShortSource: an upload's reader ended before the size it was planned with (the file was truncated
	// while it uploaded); the upload is aborted, never finished with the bytes read so far.
	ErrShortSource = errors.New("the source ended before its planned size")
	// ErrRateLimited: the bucket refused the request for its rate (HTTP 429); for a write, GCS allows about
	// one per second to one object name. Retry after at least a second.
	ErrRateLimited = errors.New("rate limited")
	// ErrRetained: the object may not be deleted or overwritten (HTTP 403: a retention policy or an object
	// hold). Retrying cannot help until the object or the hold changes.
	ErrRetained = errors.New("object is under a retention policy or hold")
)

// Object is a listed or written object; Name is relative to the prefix.
type Object struct {
	Name string
	snapshot.Object
	// ContentEncoding is the object's Content-Encoding ("gzip" for objects stored compressed). The client
	// decompresses such objects on read, so their bytes cannot be checked against CRC32C (which covers the
	// stored, compressed bytes).
	ContentEncoding string
	// Folder: objects named Name/... exist too (set by List).
	Folder bool
}

// The object metadata keys holding the file's mtime: MtimeKey in unix seconds, as gsutil, gcloud storage
// and rclone write it; RcloneMtimeKey in RFC 3339 with nanoseconds, as rclone writes it (rclone before
// v1.56 wrote only this one). Upload writes both.
const (
	MtimeKey       = "goog-reserved-file-mtime"
	RcloneMtimeKey = "mtime"
)

// modTime is the file mtime an object carries (snapshot.Object.ModTime): its goog-reserved-file-mtime
// (unix seconds, any sign: 0 and earlier are 1970 and before) or rclone's mtime (RFC 3339). With both,
// rclone's finer one if they agree to the second (rclone writes both so), else goog-reserved-file-mtime,
// which gsutil and gcloud storage read and write: a disagreement means one of them rewrote it, or someone
// edited it by hand. Without either, the time the generation was last updated, else its creation time,
// as rclone reads such objects. So every replica gives a file the same mtime.
func modTime(a *storage.ObjectAttrs) time.Time {
	var goog, rc time.Time
	if v, ok := a.Metadata[MtimeKey]; ok {
		if sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			goog = time.Unix(sec, 0)
		}
	}
	if v, ok := a.Metadata[RcloneMtimeKey]; ok {
		if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v)); err == nil {
			rc = t
		}
	}
	switch {
	case !goog.IsZero() && (rc.IsZero() || rc.Unix() != goog.Unix()):
		return goog
	case !rc.IsZero():
		return rc
	case !a.Updated.IsZero():
		return a.Updated
	}
	return a.Created
}

// mtimeMetadata is the metadata Upload writes for mtime: both keys modTime reads, whole seconds (rounded
// down, before 1970 too) and RFC 3339 to the nanosecond, in UTC.
func mtimeMetadata(mtime time.Time) map[string]string {
	return map[string]string{MtimeKey: strconv.FormatInt(mtime.Unix(), 10),
		RcloneMtimeKey: mtime.UTC().Format(time.RFC3339Nano)}
}

// NewClient returns a storage client with the given options and a retry policy suited to a sync loop:
// idempotent calls only (every write here carries a generation precondition), jittered exponential backoff.
// STORAGE_EMULATOR_HOST and Application Default Credentials are handled by the SDK itself.
//
// Reads use the JSON API (the SDK defaults to XML): it serves a pinned generation the same way on GCS and
// on fake-gcs-server, and returns the CRC32C the download is checked against.
func NewClient(ctx context.Context, opts ...option.ClientOption) (*storage.Client, error) {
	// OpenTelemetry instrumentation is off: filesync exports its own Prometheus metrics, and the per-request
	// attribute work showed up in restore profiles.
	opts = append([]option.ClientOption{storage.WithJSONReads(), option.WithTelemetryDisabled(),
		storage.WithDisabledClientMetrics()}, opts...)
	c, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("storage client: %w", err)
	}
	c.SetRetry(
		storage.WithPolicy(storage.RetryIdempotent),
		storage.WithBackoff(gax.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2}),
		storage.WithMaxAttempts(6),
		storage.WithErrorFunc(shouldRetry),
	)
	return c, nil
}

// shouldRetry is the SDK's retry rule without HTTP 429: GCS allows about one write per second to an
// object name, and the SDK would retry within 100 ms; the syncer backs the path off for at least a second
// instead and sends its latest version then (ErrRateLimited).
func shouldRetry(err error) bool {
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code == http.StatusTooManyRequests {
		return false
	}
	return storage.ShouldRetry(err)
}

// Request kinds, as counted by a Store's request hook: objects.list pages, metadata gets (bucket or object),
// media reads, inserts (uploads) and deletes. They map onto GCS's operation classes (list and insert are
// Class A, get and read Class B, delete free).
const (
	OpList   = "list"
	OpGet    = "get"
	OpRead   = "read"
	OpInsert = "insert"
	OpDelete = "delete"
)

// Store reads and writes objects under one prefix of one bucket.
type Store struct {
	bucket  *storage.BucketHandle
	loc     gsurl.Location
	request func(op string)
}

// New returns a Store for remote using client. request, if not nil, is called once for every request the
// store makes (OpList per page of a listing); the SDK's own low-level retries are not counted.
func New(client *storage.Client, loc gsurl.Location, request func(op string)) *Store {
	if request == nil {
		request = func(string) {}
	}
	return &Store{bucket: client.Bucket(loc.Bucket), loc: loc, request: request}
}

func (s *Store) objectName(rel string) string {
	if s.loc.Prefix == "" {
		return rel
	}
	return s.loc.Prefix + "/" + rel
}

// Name returns the full object name of rel (for logs).
func (s *Store) Name(rel string) string { return s.objectName(rel) }

// CheckBucket verifies the bucket exists and is reachable.
func (s *Store) CheckBucket(ctx context.Context) error {
	s.request(OpGet)
	if _, err := s.bucket.Attrs(ctx); err != nil {
		return fmt.Errorf("bucket %s: %w", s.loc.Bucket, mapErr(err))
	}
	return nil
}

// Stat returns the live object rel, looked up in the bucket itself (one objects.get), or ErrNotFound: what
// the bucket holds now, not what the last listing said.
func (s *Store) Stat(ctx context.Context, rel string) (Object, error) {
	s.request(OpGet)
	a, err := s.bucket.Object(s.objectName(rel)).Attrs(ctx)
	if err != nil {
		return Object{}, fmt.Errorf("stat %s: %w", s.objectName(rel), mapErr(err))
	}
	return objectOf(rel, a), nil
}

// IsPlaceholder reports whether an object name is a folder placeholder: the Cloud Console's "Create
// folder" (and other tools) write a zero-byte object named "dir/". It names a folder, not a file: List
// leaves such objects out, and they make no folder of their own (docs/design.md, "Object metadata").
func IsPlaceholder(name string) bool { return strings.HasSuffix(name, "/") }

// IsFolder reports whether any object, not counting folder placeholders, lies under rel/ (one
// objects.list of a few objects; more only past placeholders): whether rel is also a folder of other
// objects, as List's Object.Folder tells for a listing.
func (s *Store) IsFolder(ctx context.Context, rel string) (bool, error) {
	q, err := query(s.objectName(rel)+"/", "")
	if err != nil {
		return false, err
	}
	pager := iterator.NewPager(s.bucket.Objects(ctx, q), 8, "")
	for {
		s.request(OpList)
		var page []*storage.ObjectAttrs
		next, err := pager.NextPage(&page)
		if err != nil {
			return false, fmt.Errorf("list %s/: %w", s.objectName(rel), mapErr(err))
		}
		if slices.ContainsFunc(page, func(a *storage.ObjectAttrs) bool { return !IsPlaceholder(a.Name) }) {
			return true, nil
		}
		if next == "" {
			return false, nil
		}
	}
}

// Open returns a reader of generation gen of rel. The reader's Object tells size and CRC32C (a media read
// carries no custom metadata: ModTime is not set; the listing or Stat has it).
func (s *Store) Open(ctx context.Context, rel string, gen int64) (*Reader, error) {
	s.request(OpRead)
	r, err := s.bucket.Object(s.objectName(rel)).Generation(gen).NewReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.objectName(rel), mapErr(err))
	}
	return &Reader{Reader: r, Object: Object{Name: rel, Object: snapshot.Object{Generation: r.Attrs.Generation, Size: r.Attrs.Size, CRC32C: r.Attrs.CRC32C},
		ContentEncoding: r.Attrs.ContentEncoding}}, nil
}

// objectOf is the object of attributes a, named rel.
func objectOf(rel string, a *storage.ObjectAttrs) Object {
	return Object{Name: rel, Object: snapshot.Object{Generation: a.Generation, Size: a.Size, CRC32C: a.CRC32C, ModTime: modTime(a)},
		ContentEncoding: a.ContentEncoding}
}

// Reader reads one object generation.
type Reader struct {
	*storage.Reader
	Object Object
}

// Content is what an upload sends: Size bytes of R, whose CRC32C GCS verifies; the file's ModTime (zero:
// none is stored); and TypeOf, the name the Content-Type is taken from ("": the object's own; a conflict
// copy, whose name ends in a pod and a time, takes its path's).
type Content struct {
	R       io.Reader
	Size    int64
	CRC32C  uint32
	ModTime time.Time
	TypeOf  string
}

// Upload writes c to rel, if the current generation is ifGeneration (0: only if the object does not
// exist), with c.ModTime (unless zero) as its goog-reserved-file-mtime (whole seconds) and rclone's
// mtime (nanoseconds), and the Content-Type of c.TypeOf's extension (internal/mediatype; never sniffed
// from the bytes). Overwriting a generation keeps what was set on it (carry). It returns the new object.
// Exactly c.Size bytes are sent: a reader that ends sooner aborts the upload (ErrShortSource), one that
// has more is read no further.
func (s *Store) Upload(ctx context.Context, rel string, c Content, ifGeneration int64) (Object, error) {
	name := s.objectName(rel)
	typeOf := c.TypeOf
	if typeOf == "" {
		typeOf = rel
	}
	attrs := storage.ObjectAttrs{ContentType: mediatype.Of(typeOf)}
	cond := storage.Conditions{DoesNotExist: true}
	if ifGeneration != 0 {
		prev, err := s.live(ctx, name, ifGeneration)
		if err != nil {
			return Object{}, fmt.Errorf("upload %s: %w", name, err)
		}
		carry(&attrs, prev)
		cond = storage.Conditions{GenerationMatch: ifGeneration, MetagenerationMatch: prev.Metageneration}
	}
	if !c.ModTime.IsZero() {
		if attrs.Metadata == nil {
			attrs.Metadata = map[string]string{}
		}
		maps.Copy(attrs.Metadata, mtimeMetadata(c.ModTime))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.request(OpInsert)
	w := s.bucket.Object(name).If(cond).NewWriter(ctx)
	w.ContentType, w.CacheControl, w.ContentDisposition, w.ContentLanguage, w.Metadata =
		attrs.ContentType, attrs.CacheControl, attrs.ContentDisposition, attrs.ContentLanguage, attrs.Metadata
	w.CRC32C, w.SendCRC32C, w.DisableAutoChecksum = c.CRC32C, true, true
	w.ChunkSize = chunkSize(c.Size)
	size, crc := c.Size, c.CRC32C
	if _, err := io.Copy(w, &exactly{r: c.R, left: size}); err != nil {
		// Cancel, and never Close: Close ends the stream normally, and the upload would be finished with
		// the bytes sent so far (a cut-off object, on a server that does not check the CRC32C sent with
		// it); cancelling makes the writer's own goroutine abort it (TestFileTruncatedWhileItUploads).
		cancel()
		return Object{}, fmt.Errorf("upload %s: %w", name, mapErr(err))
	}
	if err := w.Close(); err != nil {
		return Object{}, fmt.Errorf("upload %s: %w", name, mapErr(err))
	}
	o := objectOf(rel, w.Attrs())
	if o.Size != size || o.CRC32C != crc {
		return o, fmt.Errorf("upload %s: %w (sent %d bytes crc32c %08x, stored %d bytes %08x)",
			name, ErrMismatch, size, crc, o.Size, o.CRC32C)
	}
	return o, nil
}

// live returns the attributes of the live generation of name (one objects.get), which must be gen:
// ErrPrecondition when another generation is live or none is, as the write would find.
func (s *Store) live(ctx context.Context, name string, gen int64) (*storage.ObjectAttrs, error) {
	s.request(OpGet)
	a, err := s.bucket.Object(name).Attrs(ctx)
	switch err := mapErr(err); {
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("%w: generation %d is not live: %w", ErrPrecondition, gen, err)
	case err != nil:
		return nil, err
	case a.Generation != gen:
		return nil, fmt.Errorf("%w: generation %d is live, not %d", ErrPrecondition, a.Generation, gen)
	}
	return a, nil
}

// sniffed are the Content-Types an object may hold that were guessed from its bytes rather than chosen:
// what the storage client stores when an upload names none (http.DetectContentType: filesync before it
// had mediatype, and other Go programs) where that differs from the table's value for the name: the
// generic ones, and zip (.docx, .xlsx, .odt, .epub, ...), ogg (.ogg, .oga), x-icon (.ico), wave (.wav).
var sniffed = map[string]bool{
	"application/octet-stream": true, "text/plain; charset=utf-8": true, "text/html; charset=utf-8": true,
	"text/xml; charset=utf-8": true, "application/zip": true, "application/ogg": true, "image/x-icon": true,
	"audio/wave": true,
}

// carry makes an upload over generation prev keep what an operator set on it (docs/design.md, "Object
// metadata"): its Cache-Control, Content-Disposition, Content-Language and custom metadata, except the
// mtime keys (the new content's are written, or none); and its Content-Type unless that is the one the
// table gives the name (attrs holds it) or one sniffed from the bytes.
func carry(attrs *storage.ObjectAttrs, prev *storage.ObjectAttrs) {
	attrs.CacheControl, attrs.ContentDisposition, attrs.ContentLanguage =
		prev.CacheControl, prev.ContentDisposition, prev.ContentLanguage
	if prev.ContentType != "" && !sniffed[prev.ContentType] {
		attrs.ContentType = prev.ContentType
	}
	for k, v := range prev.Metadata {
		if k != MtimeKey && k != RcloneMtimeKey {
			if attrs.Metadata == nil {
				attrs.Metadata = map[string]string{}
			}
			attrs.Metadata[k] = v
		}
	}
}

// exactly reads left bytes from r: io.EOF after them, ErrShortSource if r ends first.
type exactly struct {
	r    io.Reader
	left int64
}

func (e *exactly) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if errors.Is(err, io.EOF) && e.left > 0 {
		return n, fmt.Errorf("%w: %d bytes missing", ErrShortSource, e.left)
	}
	if errors.Is(err, io.EOF) {
		err = nil // the next Read says io.EOF
	}
	return n, err
}

// chunkSize keeps small uploads to one buffered (retryable) request without holding 16 MiB per transfer.
func chunkSize(size int64) int {
	const quantum, maxChunk = 256 << 10, 8 << 20
	if size >= maxChunk {
		return maxChunk
	}
	return int((size/quantum + 1) * quantum)
}

// Delete deletes rel if its live generation is ifGeneration. It returns ErrPrecondition when that
// generation is not live any more, whether it was replaced (412) or is gone (404): either way nothing newer
// was deleted and the path must be planned again. The request names the generation as well as the
// precondition, so even a server that ignores ifGenerationMatch on deletes (fake-gcs-server does) cannot
// delete a newer version.
func (s *Store) Delete(ctx context.Context, rel string, ifGeneration int64) error {
	name := s.objectName(rel)
	o := s.bucket.Object(name).Generation(ifGeneration).If(storage.Conditions{GenerationMatch: ifGeneration})
	s.request(OpDelete)
	if err := o.Delete(ctx); err != nil {
		err = mapErr(err)
		if errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("%w: generation %d is not live: %w", ErrPrecondition, ifGeneration, err)
		}
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// mapErr turns SDK errors the syncer decides on into this package's sentinels (keeping the original).
func mapErr(err error) error {
	if errors.Is(err, storage.ErrObjectNotExist) || errors.Is(err, storage.ErrBucketNotExist) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch {
		case ge.Code == http.StatusPreconditionFailed:
			return fmt.Errorf("%w: %w", ErrPrecondition, err)
		case ge.Code == http.StatusNotFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case ge.Code == http.StatusTooManyRequests:
			return fmt.Errorf("%w: %w", ErrRateLimited, err)
		case ge.Code == http.StatusForbidden && retained(ge):
			return fmt.Errorf("%w: %w", ErrRetained, err)
		}
	}
	return err
}

// retained reports whether a 403 is GCS refusing to delete or overwrite an object under a retention
// policy, an object retention or an event-based or temporary hold ("Object '…' is subject to bucket's
// retention policy …", "… is under active Event-Based hold …"), not a missing permission.
func retained(ge *googleapi.Error) bool {
	msgs := []string{ge.Message, ge.Body}
	for _, e := range ge.Errors {
		msgs = append(msgs, e.Reason, e.Message)
	}
	for _, m := range msgs {
		m = strings.ToLower(m)
		if strings.Contains(m, "retention") || strings.Contains(m, " hold") {
			return true
		}
	}
	return false
}
