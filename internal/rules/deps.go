package rules

import (
	"fmt"

	"github.com/google/uuid"
)

// MaxDependencies is the most jobs one job may depend on.
const MaxDependencies = 10000

// Dep is one dependency of a job of a Create call: Index is the position
// of an earlier job of the same call, or -1 when ID names a job created
// before the call.
type Dep struct {
	Index int
	ID    uuid.UUID
}

// Deps checks and resolves the dependencies of the jobs of one Create call,
// given for each job as the IDs of stored jobs and the jobs it names with
// After (pointers, compared by identity; id reads a job's ID). A job
// named with After must come earlier in the call, or have an ID: then it
// is a stored job. Deps are listed once each, in the order given, IDs
// first. The result is nil when no job has a dependency. The error text
// says which job is wrong and why.
func Deps[J any](js []*J, deps func(*J) ([]uuid.UUID, []*J), id func(*J) uuid.UUID) ([][]Dep, error) {
	var out [][]Dep
	var pos map[*J]int
	for i, j := range js {
		ids, after := deps(j)
		if len(ids) == 0 && len(after) == 0 {
			continue
		}
		if len(ids)+len(after) > MaxDependencies {
			return nil, fmt.Errorf("job %d depends on %d jobs, over the limit of %d", i, len(ids)+len(after), MaxDependencies)
		}
		if pos == nil {
			pos = make(map[*J]int, len(js))
			for k, o := range js {
				if _, ok := pos[o]; !ok {
					pos[o] = k
				}
			}
			out = make([][]Dep, len(js))
		}
		seen := make(map[uuid.UUID]bool, len(ids))
		seenIdx := map[int]bool{}
		ds := make([]Dep, 0, len(ids)+len(after))
		for _, d := range ids {
			if d == uuid.Nil {
				return nil, fmt.Errorf("job %d depends on the nil ID", i)
			}
			if !seen[d] {
				seen[d] = true
				ds = append(ds, Dep{Index: -1, ID: d})
			}
		}
		for _, a := range after {
			if a == nil {
				return nil, fmt.Errorf("job %d names a nil job in After", i)
			}
			k, ok := pos[a]
			switch {
			case ok && k >= i:
				return nil, fmt.Errorf("job %d names itself or a later job of the call in After: a job may only depend on jobs created before it", i)
			case ok:
				if !seenIdx[k] {
					seenIdx[k] = true
					ds = append(ds, Dep{Index: k})
				}
			case id(a) == uuid.Nil:
				return nil, fmt.Errorf("job %d names in After a job that is neither created nor in this call", i)
			case !seen[id(a)]:
				seen[id(a)] = true
				ds = append(ds, Dep{Index: -1, ID: id(a)})
			}
		}
		out[i] = ds
	}
	return out, nil
}
