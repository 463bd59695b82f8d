package store

import (
	"context"
	"fmt"
	"sync"
)

// unitRegistry is the registered units in memory, so that checking the unit
// of every uploaded row costs a map read, not a query. It is loaded at Open
// and added to by CreateUnit after its transaction commits; the units table
// is written by this store only (one sipasd per database file).
type unitRegistry struct {
	mu   sync.RWMutex
	byID map[string]Unit
}

func (r *unitRegistry) put(u Unit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = map[string]Unit{}
	}
	r.byID[u.ID] = u
}

func (r *unitRegistry) get(id string) (Unit, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	u, ok := r.byID[id]
	return u, ok
}

// loadUnits reads every unit into the registry.
func (s *Store) loadUnits(ctx context.Context) error {
	rows, err := s.reader.QueryContext(ctx, "SELECT "+unitColumns+" FROM units")
	if err != nil {
		return fmt.Errorf("load units: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUnit(rows)
		if err != nil {
			return fmt.Errorf("load units: %w", err)
		}
		s.units.put(u)
	}
	return rows.Err()
}

// Unit returns the registered unit with exactly this id, from memory. It is
// the hot-path lookup for checking a row's unit; GetUnit reads the table.
func (s *Store) Unit(id string) (Unit, bool) { return s.units.get(id) }

// UnitProvince returns the province code a unit is registered in (a
// province valid when the unit was created), false for an unknown unit. It
// makes the store a sipas.UnitDirectory for the engine.
func (s *Store) UnitProvince(id string) (string, bool) {
	u, ok := s.units.get(id)
	return u.ProvinceCode, ok
}
