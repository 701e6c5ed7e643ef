// Mutex contention peer (Go) for gort's bench/sync_bench.c: 2 and 8
// goroutines share one sync.Mutex and do 2,000,000 lock; counter++; unlock
// pairs in all; ns per pair, median of reps (5). Run with GOMAXPROCS=2.
// Usage: mutex [reps]
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
)

const total = 2000000

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func bench(n, reps int) float64 {
	var ns []float64
	for r := 0; r < reps; r++ {
		var mu sync.Mutex
		var wg sync.WaitGroup
		counter := 0
		per := total / n
		t0 := time.Now()
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func() {
				for k := 0; k < per; k++ {
					mu.Lock()
					counter++
					mu.Unlock()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		d := time.Since(t0)
		if counter != per*n {
			fmt.Println("BAD counter")
			os.Exit(1)
		}
		v := float64(d.Nanoseconds()) / float64(per*n)
		fmt.Printf("rep %d: mutex-%d %.1f ns/pair\n", r, n, v)
		ns = append(ns, v)
	}
	return median(ns)
}

func main() {
	reps := 5
	if len(os.Args) > 1 {
		reps, _ = strconv.Atoi(os.Args[1])
	}
	peer := fmt.Sprintf("go-p%d", runtime.GOMAXPROCS(0))
	fmt.Printf("RESULT sync_mutex2 %s pair=%.1f ns\n", peer, bench(2, reps))
	fmt.Printf("RESULT sync_mutex8 %s pair=%.1f ns\n", peer, bench(8, reps))
}
