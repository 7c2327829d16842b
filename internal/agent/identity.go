package agent

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/types"
)

// newNodeID returns 16 random hex digits.
func newNodeID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// capacity is what the host offers: every CPU and all of its memory. The
// scheduler subtracts reservations from it.
func capacity() types.ResourceAmounts {
	mem, _ := memTotal("/proc/meminfo") // unknown memory is reported as 0
	return types.ResourceAmounts{NanoCPUs: int64(runtime.NumCPU()) * 1e9, MemoryBytes: mem}
}

// memTotal reads MemTotal (in kB) from a meminfo file, in bytes.
func memTotal(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "MemTotal:" {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse MemTotal in %s: %w", path, err)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no MemTotal in %s", path)
}
