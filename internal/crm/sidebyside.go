package crm

import "sync"

// sideBySide runs n items of work with the outcome of running them one
// after another in their order, but up to parallel at once, so that their
// writes share commits (the embedded engines' group commit) and their reads
// overlap. A push's creates and an import's rows go through it.
//
// enter(i) is called for each item in order, on the caller's goroutine; it
// returns the earlier items item i must wait for: those whose effect it
// could see (a key in common, its id). apply(i) then runs on a goroutine of
// its own as soon as each of them has finished. Items that share nothing do
// not wait for each other.
//
// An error of enter or apply that is not about its item (see aboutRecord)
// is a fault: every item not yet applied gets it instead (those not yet
// entered, and those waiting their turn), and the items being applied
// finish. sideBySide returns each item's error.
func sideBySide(n, parallel int, enter func(i int) (after []int, err error), apply func(i int) error) []error {
	var (
		errs     = make([]error, n)
		wg       sync.WaitGroup
		faultMu  sync.Mutex
		fault    error
		slots    = make(chan struct{}, max(parallel, 1))
		finished = make([]chan struct{}, n)
	)
	faulted := func(err error) error {
		faultMu.Lock()
		defer faultMu.Unlock()
		if fault == nil && err != nil && !aboutRecord(err) {
			fault = err
		}
		return fault
	}
	for i := range n {
		if err := faulted(nil); err != nil {
			for j := i; j < n; j++ {
				errs[j] = err
			}
			break
		}
		finished[i] = make(chan struct{})
		after, err := enter(i)
		if err != nil {
			faulted(err) // a fault ends the loop above
			errs[i] = err
			close(finished[i])
			continue
		}
		waits := make([]chan struct{}, 0, len(after))
		for _, j := range after {
			waits = append(waits, finished[j])
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer close(finished[i])
			for _, w := range waits {
				<-w
			}
			// A fault while this item waited stops it too, as one after
			// another would have stopped before it.
			if err := faulted(nil); err != nil {
				errs[i] = err
				return
			}
			errs[i] = apply(i)
			faulted(errs[i])
		}()
	}
	wg.Wait()
	return errs
}

// entryOrder is what sideBySide's enter knows of the items entered so far:
// the latest holding each name (a key, an id), so that an item waits for
// the earlier items sharing a name with it.
type entryOrder struct {
	// last is the latest item holding each name.
	last map[string]int
	// since are the items entered since the latest barrier (see below).
	since []int
}

func newEntryOrder() *entryOrder { return &entryOrder{last: map[string]int{}} }

// barrier is the name of items that wait for all before them, and all
// after them for them.
const barrier = "\x00all"

// enter records that item i holds names and returns the earlier items it
// waits for. An item holding barrier waits for the latest barrier and the
// items entered since (which waited for the ones before); every item waits
// for the latest barrier.
func (o *entryOrder) enter(i int, names []string) (after []int) {
	isBarrier := false
	for _, name := range names {
		if name == barrier {
			isBarrier = true
		}
		if j, ok := o.last[name]; ok && j != i { // a name given twice
			after = append(after, j)
		}
		o.last[name] = i
	}
	if isBarrier {
		after, o.since = append(after, o.since...), nil
		return after
	}
	if j, ok := o.last[barrier]; ok {
		after = append(after, j)
	}
	o.since = append(o.since, i)
	return after
}

// holds reports whether an item entered so far held name.
func (o *entryOrder) holds(name string) bool {
	_, ok := o.last[name]
	return ok
}
