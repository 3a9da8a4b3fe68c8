package main

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// writeFSBackendObjects writes objects straight into the directory layout of fake-gcs-server's
// filesystem backend (ROOT/BUCKET/NAME, attributes as JSON in the user.metadata xattr), which the
// server reads afresh on every request. Uploading 100,000 objects through its HTTP API runs at under
// 200 objects/s on this machine; this takes seconds. The bucket must exist (create it through the API).
func writeFSBackendObjects(root, bucket, prefix string, files []file, content func(i int) []byte) error {
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	now := time.Now().UTC()
	for i, f := range files {
		data := content(i)
		p := filepath.Join(root, url.PathEscape(bucket), filepath.FromSlash(prefix+"/"+f.Rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("writing the fake bucket: %w", err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return fmt.Errorf("writing the fake bucket: %w", err)
		}
		var crc [4]byte
		binary.BigEndian.PutUint32(crc[:], crc32.Checksum(data, castagnoli))
		sum := md5.Sum(data)
		ts := now.Format("2006-01-02T15:04:05.999999Z07:00")
		attrs, err := json.Marshal(map[string]any{
			"StorageClass": "STANDARD", "ContentType": "application/octet-stream",
			"Crc32c": base64.StdEncoding.EncodeToString(crc[:]), "Md5Hash": base64.StdEncoding.EncodeToString(sum[:]),
			"Etag": base64.StdEncoding.EncodeToString(sum[:]), "Created": ts, "Updated": ts,
			"Generation": now.UnixMicro() + int64(i),
		})
		if err != nil {
			return fmt.Errorf("encoding object attributes: %w", err)
		}
		if err := syscall.Setxattr(p, "user.metadata", attrs, 0); err != nil {
			return fmt.Errorf("writing the attributes of %s: %w", p, err)
		}
	}
	return nil
}
