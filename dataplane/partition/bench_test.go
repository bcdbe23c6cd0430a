package partition

import "testing"

func benchmarkAppend(b *testing.B, records, size int) {
	m, _ := newTestManager(b)
	m.ApplyImage(testImage(1, testTopic("bench", 1, 1, testNode, 0, []int32{testNode}, nil)))
	p := mustPartition(b, m, "bench", 0)
	batch := batchOf(records, size)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		// Non-idempotent: the same bytes may be appended again (the base
		// offset and leader epoch are overwritten in place).
		if _, err := p.AppendAsLeader(batch, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend1KiB appends batches of 16 records of 1 KiB.
func BenchmarkAppend1KiB(b *testing.B) { benchmarkAppend(b, 16, 1024) }

// BenchmarkAppend100B appends batches of 16 records of 100 bytes.
func BenchmarkAppend100B(b *testing.B) { benchmarkAppend(b, 16, 100) }
