package harness

import (
	"crypto/rand"
	"encoding/hex"
)

// RandomBytes returns n random bytes: incompressible test content that cannot collide with anything else.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return b
}

// RandomHex returns 2n random lowercase hex digits.
func RandomHex(n int) string { return hex.EncodeToString(RandomBytes(n)) }

// RandomName returns prefix, a dash and eight random lowercase letters and digits, for test files and media.
func RandomName(prefix string) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := RandomBytes(8)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return prefix + "-" + string(b)
}
