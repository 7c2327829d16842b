package imagepush

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// stream reads the engine's save (Docker 20.10's layout: a lexical tar of
// <v1id>/json, <v1id>/layer.tar, <config hex>.json, manifest.json) in one
// pass and uploads every layer and the config the registry lacks. A
// layer's json comes before its layer.tar, and from it the v1 ID, so the
// diffID of each layer.tar is known before its bytes are read: a layer the
// registry has is skipped, not sent.
func (rp *rawPush) stream(ctx context.Context, r io.Reader) error {
	v1 := v1IDs{chain: chainIDs(rp.diffIDs)}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the engine's save of %s: %w", rp.config, err)
		}
		name := path.Clean(hdr.Name)
		dir, file := path.Split(name)
		dir = strings.TrimSuffix(dir, "/")
		switch {
		case hdr.Typeflag == tar.TypeDir:
		case strings.Contains(dir, "/"), name == "index.json", name == "oci-layout":
			return fmt.Errorf("the save has %s: %w", name, ErrLayout)
		case hdr.Typeflag != tar.TypeReg:
			return fmt.Errorf("the save's %s is not a plain file: %w", name, ErrLayout)
		case dir != "" && file == "json":
			js, err := readSmall(tr, hdr)
			if err != nil {
				return err
			}
			v1.learn(dir, js, rp.diffIDs)
		case dir != "" && file == "layer.tar":
			if err := rp.layer(ctx, tr, hdr.Size, v1.diffID(dir)); err != nil {
				return err
			}
		case dir == "" && "sha256:"+strings.TrimSuffix(file, ".json") == rp.config:
			if err := rp.configBlob(ctx, tr, hdr); err != nil {
				return err
			}
		}
	}
}

// layer uploads one layer.tar unless the registry has it. want is its
// diffID, "" when the save's json did not say which layer it is: then it
// goes anyway (the registry keeps one copy per digest) and must be one of
// the image's.
func (rp *rawPush) layer(ctx context.Context, r io.Reader, size int64, want string) error {
	if _, ok := rp.size[want]; ok && want != "" {
		return nil // the tar reader skips its bytes
	}
	shown := want
	if shown == "" {
		shown = "(unknown)"
	}
	rp.line(shown, layerPushing, " "+humanSize(size))
	got, err := rp.reg.upload(ctx, r, size, func(d string) error {
		if want != "" && d != want {
			return fmt.Errorf("the engine's save of layer %s has digest %s; the image changed while it was saved, retry the push", want, d)
		}
		if want == "" && !slices.Contains(rp.diffIDs, d) {
			return fmt.Errorf("the engine's save of %s has a layer of digest %s that the image does not list; retry the push", rp.config, d)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if _, had := rp.size[got]; !had {
		rp.size[got] = size
		rp.pushed++
	}
	rp.line(got, layerPushed, "")
	return nil
}

// configBlob uploads the image's config (its digest is the image ID).
func (rp *rawPush) configBlob(ctx context.Context, tr io.Reader, hdr *tar.Header) error {
	if _, ok := rp.size[rp.config]; ok {
		return nil
	}
	b, err := readSmall(tr, hdr)
	if err != nil {
		return err
	}
	if _, err := rp.reg.upload(ctx, strings.NewReader(string(b)), int64(len(b)), func(d string) error {
		if d != rp.config {
			return fmt.Errorf("the engine's save of image %s has a config of digest %s; retry the push", rp.config, d)
		}
		return nil
	}); err != nil {
		return err
	}
	rp.size[rp.config] = int64(len(b))
	return nil
}

func readSmall(r io.Reader, hdr *tar.Header) ([]byte, error) {
	if hdr.Size > maxSmallFile {
		return nil, fmt.Errorf("the save's %s is %s, more than berth reads: %w", hdr.Name, humanSize(hdr.Size), ErrLayout)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxSmallFile))
	if err != nil {
		return nil, fmt.Errorf("read the save's %s: %w", hdr.Name, err)
	}
	return b, nil
}

// v1IDs maps the save's layer directories (the engine's v1 IDs) to
// diffIDs.
type v1IDs struct {
	chain []string
	dirs  map[string]string
}

// learn finds which layer a <v1id>/json describes by recomputing the v1 ID
// the engine gives the layer at each depth (its CreateID: the json
// without id, with layer_id the chain ID, parent as a digest, os only on
// the top layer) and comparing it with the directory's name.
func (v *v1IDs) learn(dir string, js []byte, diffIDs []string) {
	if v.dirs == nil {
		v.dirs = map[string]string{}
	}
	for i, chain := range v.chain {
		if v1ID(js, chain, i == len(v.chain)-1) == dir {
			v.dirs[dir] = diffIDs[i]
			return
		}
	}
}

func (v *v1IDs) diffID(dir string) string { return v.dirs[dir] }

func v1ID(js []byte, chain string, top bool) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(js, &m) != nil {
		return ""
	}
	delete(m, "id")
	if !top {
		delete(m, "os")
	}
	m["layer_id"] = json.RawMessage(`"` + chain + `"`)
	if p, ok := m["parent"]; ok {
		var parent string
		if json.Unmarshal(p, &parent) != nil {
			return ""
		}
		m["parent"] = json.RawMessage(`"sha256:` + parent + `"`)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// chainIDs are the chain IDs of the first 1, 2, ... layers.
func chainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1] + " " + d))
		out[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}
