package compose

import (
	"fmt"

	ctypes "github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/types"
)

// convertMounts converts a service's volumes. compose-go has made bind
// sources absolute and parsed the short syntax into the long one.
func convertMounts(p *ctypes.Project, in []ctypes.ServiceVolumeConfig) ([]types.Mount, error) {
	var out []types.Mount
	for i, v := range in {
		m, err := convertMount(p, v)
		if err != nil {
			return nil, atKey(fmt.Sprintf("volumes[%d]", i), err)
		}
		out = append(out, m)
	}
	return out, nil
}

func convertMount(p *ctypes.Project, v ctypes.ServiceVolumeConfig) (types.Mount, error) {
	m := types.Mount{Target: v.Target, ReadOnly: v.ReadOnly}
	if v.Target == "" {
		return m, fmt.Errorf("%s mount has no target", v.Type)
	}
	switch v.Type {
	case ctypes.VolumeTypeBind:
		m.Type, m.Source = types.MountBind, v.Source
	case ctypes.VolumeTypeVolume:
		// Source is the key of a top-level volume, or empty: anonymous.
		if _, ok := p.Volumes[v.Source]; v.Source != "" && !ok {
			return m, fmt.Errorf("volume %q is not declared under the top-level volumes key; add it there", v.Source)
		}
		m.Type, m.Source = types.MountVolume, v.Source
	case ctypes.VolumeTypeTmpfs:
		m.Type = types.MountTmpfs
	default:
		return m, fmt.Errorf("mount type %q is not supported by berth; use bind, volume or tmpfs", v.Type)
	}
	return m, nil
}
