package server

import (
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// Machine records: the hosts berth made, which the CLI records after a
// driver made them (see internal/machine).

func (s *Server) listMachines(w http.ResponseWriter, _ *http.Request) error {
	ms := s.store.View().Machines()
	out := make([]api.Machine, 0, len(ms))
	for _, m := range ms {
		out = append(out, machineOut(m))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getMachine(w http.ResponseWriter, r *http.Request) error {
	m := s.store.View().Machine(r.PathValue("name"))
	if m == nil {
		return notFound("no machine named %q", r.PathValue("name"))
	}
	writeJSON(w, http.StatusOK, machineOut(m))
	return nil
}

// putMachine records a machine, or replaces its record: the CLI writes it
// once the host is made, and again if it is made anew.
func (s *Server) putMachine(w http.ResponseWriter, r *http.Request) error {
	var in api.Machine
	if err := decodeJSON(w, r, api.MaxRequestBytes, &in); err != nil {
		return err
	}
	name := r.PathValue("name")
	if in.Name == "" {
		in.Name = name
	}
	if in.Name != name {
		return badRequest("name", "%q differs from the name in the path, %q", in.Name, name)
	}
	m := &types.Machine{Name: in.Name, Driver: in.Driver, Role: in.Role, Labels: in.Labels,
		Address: in.Address, DockerHost: in.DockerHost, Created: in.Created}
	if field, err := types.CheckMachine(m); err != nil {
		return badRequest(field, "%s", err.Error())
	}
	if v := s.store.View(); v.Machine(m.Name) == nil && len(v.Machines()) >= maxMachines {
		return &apiError{status: http.StatusConflict, msg: fmt.Sprintf("the cluster records at most %d machines; remove some first (berth machine rm)", maxMachines)}
	}
	res, err := s.Commit(r.Context(), &state.UpsertMachine{Machine: m})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, machineOut(res.(*types.Machine)))
	return nil
}

func (s *Server) deleteMachine(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.Commit(r.Context(), &state.DeleteMachine{Name: r.PathValue("name")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func machineOut(m *types.Machine) api.Machine {
	return api.Machine{Name: m.Name, Driver: m.Driver, Role: m.Role, Labels: m.Labels,
		Address: m.Address, DockerHost: m.DockerHost, Created: m.Created}
}

// maxMachines bounds the records (types.MaxMachines); tests lower it.
var maxMachines = types.MaxMachines
