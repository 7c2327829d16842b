package docker

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRenameTop(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []string
		want    []string
		wantErr string
	}{
		{name: "a file", in: []string{"a.txt"}, want: []string{"b.txt"}},
		{name: "a directory and what is under it", in: []string{"site/", "site/index.html", "./site/css/a.css"},
			want: []string{"html", "html/index.html", "html/css/a.css"}},
		{name: "two top entries", in: []string{"a", "b"}, wantErr: "more than one top entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in bytes.Buffer
			tw := tar.NewWriter(&in)
			for _, n := range tc.in {
				h := &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}
				if strings.HasSuffix(n, "/") {
					h.Typeflag, h.Size = tar.TypeDir, 0
				}
				if err := tw.WriteHeader(h); err != nil {
					t.Fatal(err)
				}
				if h.Size > 0 {
					_, _ = tw.Write([]byte("x"))
				}
			}
			tw.Close()
			top := "b.txt"
			if len(tc.want) > 1 {
				top = "html"
			}
			var out bytes.Buffer
			err := renameTop(&out, &in, top)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			tr := tar.NewReader(&out)
			for {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, h.Name)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("names %q, want %q", got, tc.want)
			}
		})
	}
}
