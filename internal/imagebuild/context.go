package imagebuild

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// buildContext describes what goes into the tar stream sent to the engine.
type buildContext struct {
	dir     string
	ignore  *patternmatcher.PatternMatcher
	always  map[string]bool // slash paths sent even when .dockerignore matches
	extraDF string          // Dockerfile from outside dir, sent under dfName
	dfName  string          // Dockerfile path inside the tar
}

// newBuildContext resolves the context directory and Dockerfile and reads
// .dockerignore. A Dockerfile outside the context is carried in the tar under
// a private name, which is what `docker build -f` does too.
func newBuildContext(dir, dockerfile string) (*buildContext, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve build context %s: %w", dir, err)
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory", dir)
	}
	bc := &buildContext{dir: abs, always: map[string]bool{".dockerignore": true}}
	if bc.ignore, err = readDockerignore(abs); err != nil {
		return nil, err
	}
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	df := dockerfile
	if !filepath.IsAbs(df) {
		df = filepath.Join(abs, df)
	}
	if _, err := os.Stat(df); err != nil {
		return nil, fmt.Errorf("dockerfile %s not found: %w", dockerfile, err)
	}
	rel, err := filepath.Rel(abs, df)
	if err != nil || strings.HasPrefix(rel, "..") {
		bc.extraDF, bc.dfName = df, ".berth-dockerfile"
		return bc, nil
	}
	bc.dfName = filepath.ToSlash(rel)
	bc.always[bc.dfName] = true
	return bc, nil
}

func readDockerignore(dir string) (*patternmatcher.PatternMatcher, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("parse .dockerignore: %w", err)
	}
	return pm, nil
}

// excluded reports whether rel (slash form) is left out of the context.
func (bc *buildContext) excluded(rel string) (bool, error) {
	if bc.ignore == nil || bc.always[rel] {
		return false, nil
	}
	return bc.ignore.MatchesOrParentMatches(rel)
}

// writeTar writes the context to w as a tar stream.
func (bc *buildContext) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(bc.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(bc.dir, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		skip, err := bc.excluded(rel)
		if err != nil {
			return err
		}
		if skip {
			// A directory is still walked when exclusions (!pattern) may
			// bring back something below it.
			if d.IsDir() && !bc.ignore.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		return addToTar(tw, path, rel, d)
	})
	if err != nil {
		return fmt.Errorf("archive build context %s: %w", bc.dir, err)
	}
	if bc.extraDF != "" {
		info, err := os.Stat(bc.extraDF)
		if err != nil {
			return fmt.Errorf("archive dockerfile: %w", err)
		}
		if err := addToTar(tw, bc.extraDF, bc.dfName, fs.FileInfoToDirEntry(info)); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addToTar(tw *tar.Writer, path, name string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	link := ""
	if info.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(path); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return err
	}
	hdr.Name = name
	// The builder owner of files in the image is root, as with docker build.
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}
