package server

import "net/http"

// refuseWhenHalted answers every request with 503 once this manager's Raft
// has halted on a corrupt log entry: its state stopped at that entry, so
// nothing it would serve can be trusted, and the answer tells the operator
// what to do.
func (s *Server) refuseWhenHalted(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.raft.Halted(); err != nil {
			writeError(w, &apiError{status: http.StatusServiceUnavailable, msg: err.Error()})
			return
		}
		next.ServeHTTP(w, r)
	})
}
