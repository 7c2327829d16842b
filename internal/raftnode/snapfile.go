package raftnode

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A saved snapshot file is three parts, so a restore can tell a berth
// snapshot from any other file and a complete one from a cut or damaged one:
//
//	berth-raft-snapshot v1
//	{"index":120,"term":3,"size":5121}
//	<size bytes: the FSM's own snapshot>
//	sha256:<hex of those bytes>
//
// The checksum trails the data so that saving is one pass over it.
const (
	snapshotMagic  = "berth-raft-snapshot v1"
	checksumPrefix = "sha256:"
	// maxHeaderLine bounds the header lines read, so a wrong file fails
	// fast instead of being read whole in search of a newline.
	maxHeaderLine = 4096
)

// SnapshotMeta describes a saved snapshot.
type SnapshotMeta struct {
	// Index and Term are those of the last log entry the snapshot holds.
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	// Size is the length in bytes of the FSM's state in the file.
	Size int64 `json:"size"`
}

// writeSnapshotFile writes meta's header, exactly meta.Size bytes of
// state, and their checksum to w.
func writeSnapshotFile(w io.Writer, meta SnapshotMeta, state io.Reader) error {
	header, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "%s\n%s\n", snapshotMagic, header); err != nil {
		return err
	}
	sum := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(w, sum), state, meta.Size); err != nil {
		return fmt.Errorf("copy %d bytes of state: %w", meta.Size, err)
	}
	_, err = fmt.Fprintf(w, "%s%x\n", checksumPrefix, sum.Sum(nil))
	return err
}

// readSnapshotFile checks r's header, copies its state to w and verifies
// the checksum. When it fails, w may hold part of the state.
func readSnapshotFile(r io.Reader, w io.Writer) (SnapshotMeta, error) {
	br := bufio.NewReader(r)
	meta, err := readSnapshotHeader(br)
	if err != nil {
		return meta, err
	}
	sum := sha256.New()
	n, err := io.CopyN(io.MultiWriter(w, sum), br, meta.Size)
	if errors.Is(err, io.EOF) {
		return meta, fmt.Errorf("the snapshot file is cut short: %d of %d bytes of state", n, meta.Size)
	}
	if err != nil {
		return meta, err
	}
	line, err := readLine(br)
	if err != nil {
		return meta, fmt.Errorf("the snapshot file has no checksum after its state: %w", err)
	}
	want, ok := strings.CutPrefix(line, checksumPrefix)
	if !ok || want != hex.EncodeToString(sum.Sum(nil)) {
		return meta, errors.New("the snapshot file is damaged: its checksum does not match its contents")
	}
	return meta, nil
}

func readSnapshotHeader(br *bufio.Reader) (SnapshotMeta, error) {
	var meta SnapshotMeta
	magic, err := readLine(br)
	if err != nil || magic != snapshotMagic {
		return meta, errors.New("not a berth snapshot file (it does not start with the berth snapshot header)")
	}
	line, err := readLine(br)
	if err != nil {
		return meta, fmt.Errorf("read the snapshot header: %w", err)
	}
	if err := json.Unmarshal([]byte(line), &meta); err != nil {
		return meta, fmt.Errorf("read the snapshot header: %w", err)
	}
	if meta.Size < 0 {
		return meta, fmt.Errorf("the snapshot header gives a negative size %d", meta.Size)
	}
	return meta, nil
}

// readLine reads one line of at most maxHeaderLine bytes, without its
// newline.
func readLine(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for b.Len() <= maxHeaderLine {
		c, err := br.ReadByte()
		if err != nil {
			return "", err
		}
		if c == '\n' {
			return b.String(), nil
		}
		b.WriteByte(c)
	}
	return "", fmt.Errorf("line longer than %d bytes", maxHeaderLine)
}
