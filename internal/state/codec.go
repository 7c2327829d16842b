package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The framing of a command in a Raft log entry.
//
// Since the format change that added checksums an entry is
//
//	checksummed (1 byte) | kind (1 byte) | JSON body | CRC-32C (4 bytes, big endian)
//
// where the CRC-32C (Castagnoli) covers every byte before it. A flipped bit
// anywhere in the entry, on disk or on the wire, fails the check, so a
// manager never applies bytes other than those the leader encoded.
//
// Entries written before the change are the kind byte followed by the JSON
// body, with no checksum; they still decode, so a data directory of an older
// manager still opens. The two cannot be confused: the first byte of an old
// entry is a kind, a small number, and its second byte is the '{' that opens
// the JSON object; the second byte of a new entry is a kind, never '{'.
const (
	// checksummed marks the framing above; no command kind takes its value.
	checksummed  byte = 0xC5
	frameHeader       = 2 // checksummed, kind
	frameTrailer      = crc32.Size
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errChecksum means an entry's bytes are not those that were encoded.
var errChecksum = errors.New("checksum mismatch")

// frame wraps a command's JSON body into a checksummed entry.
func frame(k commandKind, body []byte) []byte {
	b := make([]byte, 0, frameHeader+len(body)+frameTrailer)
	b = append(b, checksummed, byte(k))
	b = append(b, body...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// unframe returns the kind and JSON body of an entry of either format, or
// an error when a checksummed entry's bytes were changed or the entry is no
// command at all.
func unframe(data []byte) (commandKind, []byte, error) {
	switch {
	case len(data) == 0:
		return 0, nil, errors.New("empty log entry")
	case data[0] == checksummed:
		if len(data) < frameHeader+frameTrailer {
			return 0, nil, fmt.Errorf("truncated log entry of %d bytes", len(data))
		}
		end := len(data) - frameTrailer
		if crc32.Checksum(data[:end], castagnoli) != binary.BigEndian.Uint32(data[end:]) {
			return 0, nil, errChecksum
		}
		return commandKind(data[1]), data[frameHeader:end], nil
	case len(data) > 1 && data[1] == '{':
		// An entry of a manager from before checksums (see above).
		return commandKind(data[0]), data[1:], nil
	}
	return 0, nil, fmt.Errorf("log entry starts with bytes %#x, not a command", data[:min(len(data), 2)])
}
