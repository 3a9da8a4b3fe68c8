package gcsstore

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"cloud.google.com/go/storage"
)

// Resource is an object as the JSON API represents it (the objects resource): what objects.get returns,
// and the payload of a bucket notification whose payloadFormat is JSON_API_V1.
type Resource struct {
	Bucket string
	Name   string // the full object name
	Object Object // Name relative to the prefix as ParseResource was told it
}

// resourceJSON holds the fields of the objects resource an Object is made of. GCS writes its 64-bit
// numbers as JSON strings; fake-gcs-server writes the generation as a number: both are read.
type resourceJSON struct {
	Bucket          string            `json:"bucket"`
	Name            string            `json:"name"`
	Generation      jsonInt           `json:"generation"`
	Size            jsonInt           `json:"size"`
	CRC32C          string            `json:"crc32c"`
	ContentEncoding string            `json:"contentEncoding"`
	Updated         string            `json:"updated"`
	Created         string            `json:"timeCreated"`
	Metadata        map[string]string `json:"metadata"`
}

// jsonInt is a 64-bit integer written as a JSON number or string; set tells whether it was there.
type jsonInt struct {
	n   int64
	set bool
}

func (j *jsonInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %s", b)
	}
	j.n, j.set = n, true
	return nil
}

var errResource = errors.New("not a usable object resource")

// ParseResource reads an objects resource (JSON API v1), naming its Object rel. It requires what the sync
// needs of an object (generation, size, CRC32C) and a readable update time if one is given: a payload
// without them is an error, and the caller looks the object up instead.
func ParseResource(rel string, data []byte) (Resource, error) {
	var r resourceJSON
	if err := json.Unmarshal(data, &r); err != nil {
		return Resource{}, fmt.Errorf("%w: %w", errResource, err)
	}
	if r.Bucket == "" || r.Name == "" || !r.Generation.set || r.Generation.n <= 0 || !r.Size.set || r.Size.n < 0 {
		return Resource{}, fmt.Errorf("%w: bucket, name, generation and size are required", errResource)
	}
	crc, err := base64.StdEncoding.DecodeString(r.CRC32C)
	if err != nil || len(crc) != 4 {
		return Resource{}, fmt.Errorf("%w: crc32c %q", errResource, r.CRC32C)
	}
	a := storage.ObjectAttrs{Bucket: r.Bucket, Name: r.Name, Generation: r.Generation.n, Size: r.Size.n,
		CRC32C: binary.BigEndian.Uint32(crc), ContentEncoding: r.ContentEncoding, Metadata: r.Metadata}
	for _, t := range []struct {
		v  string
		to *time.Time
	}{{r.Updated, &a.Updated}, {r.Created, &a.Created}} {
		if t.v == "" {
			continue
		}
		if *t.to, err = time.Parse(time.RFC3339Nano, t.v); err != nil {
			return Resource{}, fmt.Errorf("%w: time %q", errResource, t.v)
		}
	}
	return Resource{Bucket: r.Bucket, Name: r.Name, Object: objectOf(rel, &a)}, nil
}
