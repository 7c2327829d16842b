package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sendResult is what `app send` prints.
type sendResult struct {
	Bytes int64   `json:"bytes"`
	Acked int64   `json:"acked"` // what the sink says it read
	Secs  float64 `json:"secs"`
	MBps  float64 `json:"mbps"` // megabytes (1e6) per second, to the sink's answer
}

// runSend: app send HOST:PORT [-d D]: one TCP stream to a sink for D,
// then a half-close and the sink's count of what it read.
func runSend(args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	d := fs.Duration("d", 3*time.Second, "how long to send")
	if len(args) < 1 {
		return errors.New("usage: app send HOST:PORT [-d D]")
	}
	addr := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	c, err := (&net.Dialer{Resolver: resolver, Timeout: 3 * time.Second}).Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	end := start.Add(min(*d, maxDuration))
	var res sendResult
	for time.Now().Before(end) {
		_ = c.SetWriteDeadline(end.Add(5 * time.Second))
		n, err := c.Write(buf)
		res.Bytes += int64(n)
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", res.Bytes, err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("the sink's count: %w", err)
	}
	res.Acked, _ = strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	res.Secs = time.Since(start).Seconds()
	res.MBps = float64(res.Acked) / res.Secs / 1e6
	return printJSON(res)
}

// rrResult is what `app rr` prints: round trips on one connection at a
// fixed offered rate, in microseconds.
type rrResult struct {
	Count  int     `json:"count"`
	Rate   float64 `json:"rate"` // achieved round trips per second
	P50    float64 `json:"p50_us"`
	P90    float64 `json:"p90_us"`
	P99    float64 `json:"p99_us"`
	Max    float64 `json:"max_us"`
	Missed int     `json:"missed"` // ticks that found the last round trip still out
}

// runRR: app rr HOST:PORT [-rate R] [-n N] [-size S]: N round trips of S
// bytes to an echo, one every 1/R, on one connection.
func runRR(args []string) error {
	fs := flag.NewFlagSet("rr", flag.ContinueOnError)
	rate := fs.Int("rate", 1000, "round trips per second offered")
	n := fs.Int("n", 2000, "round trips")
	size := fs.Int("size", 64, "bytes each way")
	if len(args) < 1 {
		return errors.New("usage: app rr HOST:PORT [flags]")
	}
	addr := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *rate < 1 || *rate > 100000 || *n < 1 || *n > maxCount || *size < 1 || *size > 65536 {
		return errors.New("rr: -rate 1..100000, -n 1..1000000, -size 1..65536")
	}
	c, err := (&net.Dialer{Resolver: resolver, Timeout: 3 * time.Second}).Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetNoDelay(true)
	out, in := make([]byte, *size), make([]byte, *size)
	rtts := make([]time.Duration, 0, *n)
	period := time.Second / time.Duration(*rate)
	var res rrResult
	start := time.Now()
	next := start
	for i := 0; i < *n; i++ {
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait) // the offered rate: one round trip per period
		} else if i > 0 && -wait > period {
			res.Missed++
		}
		next = next.Add(period)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		t0 := time.Now()
		if _, err := c.Write(out); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, in); err != nil {
			return err
		}
		rtts = append(rtts, time.Since(t0))
	}
	slices.Sort(rtts)
	us := func(q float64) float64 { return float64(rtts[int(q*float64(len(rtts)-1))].Nanoseconds()) / 1e3 }
	res.Count, res.Rate = len(rtts), float64(len(rtts))/time.Since(start).Seconds()
	res.P50, res.P90, res.P99, res.Max = us(0.50), us(0.90), us(0.99), us(1)
	return printJSON(res)
}
