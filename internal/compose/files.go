package compose

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	ctypes "github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/types"
)

// ErrSecretTooLarge is returned for a secret or config over
// types.MaxSecretSize.
var ErrSecretTooLarge = errors.New("too large")

func convertSecrets(p *ctypes.Project) (map[string]*types.Secret, error) {
	if len(p.Secrets) == 0 {
		return nil, nil
	}
	out := make(map[string]*types.Secret, len(p.Secrets))
	for key, s := range p.Secrets {
		sec, err := readFileObject(p, ctypes.FileObjectConfig(s), key)
		if err != nil {
			return nil, atKey("secrets."+key, err)
		}
		out[key] = sec
	}
	return out, nil
}

func convertConfigs(p *ctypes.Project) (map[string]*types.Secret, error) {
	if len(p.Configs) == 0 {
		return nil, nil
	}
	out := make(map[string]*types.Secret, len(p.Configs))
	for key, c := range p.Configs {
		cfg, err := readFileObject(p, ctypes.FileObjectConfig(c), key)
		if err != nil {
			return nil, atKey("configs."+key, err)
		}
		out[key] = cfg
	}
	return out, nil
}

// readFileObject reads the content of a secret or config: the CLI carries
// it to the manager, which never sees the user's files.
func readFileObject(p *ctypes.Project, o ctypes.FileObjectConfig, key string) (*types.Secret, error) {
	var data []byte
	switch {
	case bool(o.External):
		return nil, errors.New("external secrets and configs are not supported by berth yet; give it a file, environment or content key instead")
	case o.File != "":
		var err error
		if data, err = readLimited(o.File); err != nil {
			return nil, atKey("file", err)
		}
	case o.Environment != "":
		v, ok := p.Environment[o.Environment]
		if !ok {
			return nil, atKey("environment", fmt.Errorf("variable %s is not set; set it, or use a file key instead", o.Environment))
		}
		data = []byte(v)
	case o.Content != "":
		data = []byte(o.Content)
	default:
		return nil, errors.New("no content: give it a file, environment or content key instead")
	}
	if len(data) > types.MaxSecretSize {
		return nil, fmt.Errorf("%d bytes is %w: the limit is %d bytes", len(data), ErrSecretTooLarge, types.MaxSecretSize)
	}
	return &types.Secret{Name: key, Data: data}, nil
}

// readLimited reads at most one byte over the limit, so a huge file is
// refused without being read whole.
func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, types.MaxSecretSize+1))
	if err != nil {
		return nil, fmt.Errorf("read file %s: %w", name, err)
	}
	if len(data) > types.MaxSecretSize {
		return nil, fmt.Errorf("file %s is %w: the limit is %d bytes", name, ErrSecretTooLarge, types.MaxSecretSize)
	}
	return data, nil
}

func secretRefs(in []ctypes.ServiceSecretConfig) []ctypes.FileReferenceConfig {
	out := make([]ctypes.FileReferenceConfig, len(in))
	for i, r := range in {
		out[i] = ctypes.FileReferenceConfig(r)
	}
	return out
}

func configRefs(in []ctypes.ServiceConfigObjConfig) []ctypes.FileReferenceConfig {
	out := make([]ctypes.FileReferenceConfig, len(in))
	for i, r := range in {
		out[i] = ctypes.FileReferenceConfig(r)
	}
	return out
}

// convertFileRefs converts a service's secrets or configs. A target that is
// missing or relative is placed under dir: /run/secrets/<name> for secrets,
// /<name> for configs, as Compose does.
func convertFileRefs(in []ctypes.FileReferenceConfig, dir string) ([]types.FileRef, error) {
	var out []types.FileRef
	for i, r := range in {
		target := r.Target
		if target == "" {
			target = r.Source
		}
		if !path.IsAbs(target) {
			target = path.Join(dir, target)
		}
		ref := types.FileRef{Source: r.Source, Target: target, UID: r.UID, GID: r.GID}
		if r.Mode != nil {
			if *r.Mode < 0 || *r.Mode > 0o7777 {
				return nil, atKey(fmt.Sprintf("[%d].mode", i), fmt.Errorf("%s is not a file mode", r.Mode.String()))
			}
			ref.Mode = uint32(*r.Mode)
		}
		out = append(out, ref)
	}
	return out, nil
}
