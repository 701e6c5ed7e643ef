// starve-latency peer (Go) for gort's bench/starve_bench.c latency: the
// starve workload of the peers' README (section 15: on GOMAXPROCS=2, 4
// workers loop on runtime.Gosched while 3 pairs ping-pong an int64 over
// unbuffered channels), with each worker reading the clock once per
// iteration; the gaps between a worker's iterations in seconds 2..5 go into
// a histogram (log2 buckets, 8 sub-buckets each, as the C side's).
// Last line: RESULT starve-latency go-p<N> p50=.. p99=.. p999=.. max=.. us
package main

import (
	"fmt"
	"math/bits"
	"runtime"
	"sync/atomic"
	"time"
)

const nbuckets = 64 * 8

var cnt [4]int64
var hist [4][nbuckets]uint64
var maxgap [4]int64
var measuring int32

func bucket(ns int64) int {
	if ns < 8 {
		return int(ns)
	}
	e := 63 - bits.LeadingZeros64(uint64(ns))
	sub := int((ns >> (e - 3)) & 7)
	return e*8 + sub
}

func bucketNs(b int) float64 {
	if b < 8 {
		return float64(b)
	}
	e, sub := b/8, b%8
	return float64(int64(1)<<e) * (1 + (float64(sub)+0.5)/8)
}

func main() {
	for i := 0; i < 4; i++ {
		i := i
		go func() {
			var last int64
			for {
				atomic.AddInt64(&cnt[i], 1)
				runtime.Gosched()
				now := time.Now().UnixNano()
				if atomic.LoadInt32(&measuring) == 1 && last != 0 {
					gap := now - last
					hist[i][bucket(gap)]++
					if gap > maxgap[i] {
						maxgap[i] = gap
					}
				}
				last = now
			}
		}()
	}
	for i := 0; i < 3; i++ {
		a, b := make(chan int64), make(chan int64)
		go func() {
			for {
				v := <-a
				b <- v
			}
		}()
		go func() {
			var v int64
			for {
				a <- v
				v = <-b
			}
		}()
	}
	time.Sleep(time.Second)
	var start [4]int64
	for i := range cnt {
		start[i] = atomic.LoadInt64(&cnt[i])
	}
	atomic.StoreInt32(&measuring, 1)
	time.Sleep(4 * time.Second)
	atomic.StoreInt32(&measuring, 2)
	var total, least int64 = 0, -1
	for i := range cnt {
		d := atomic.LoadInt64(&cnt[i]) - start[i]
		total += d
		if least < 0 || d < least {
			least = d
		}
	}
	var h [nbuckets]uint64
	var n uint64
	var mx int64
	for i := range hist {
		for b := range hist[i] {
			h[b] += hist[i][b]
			n += hist[i][b]
		}
		if maxgap[i] > mx {
			mx = maxgap[i]
		}
	}
	q := []float64{0.5, 0.99, 0.999}
	v := make([]float64, 3)
	for k := range q {
		want := uint64(q[k] * float64(n))
		var seen uint64
		for b := 0; b < nbuckets; b++ {
			seen += h[b]
			if seen > want {
				v[k] = bucketNs(b)
				break
			}
		}
	}
	p := runtime.GOMAXPROCS(0)
	fmt.Printf("INFO starve-latency go-p%d: %d gaps, workers=%d least=%d\n", p, n, total, least)
	fmt.Printf("RESULT starve-latency go-p%d p50=%.1f p99=%.1f p999=%.1f max=%.1f us\n", p,
		v[0]/1e3, v[1]/1e3, v[2]/1e3, float64(mx)/1e3)
}
