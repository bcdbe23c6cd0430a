// Package replica runs this broker's follower side of replication: the
// replica fetchers (design.md §3, "Follower").
//
// Ownership and threading:
//   - Manager keeps one fetcher per leader broker, covering every partition
//     this broker follows from that leader (one connection per leader, not
//     per partition). Update is called with what an image changed in the
//     set of followed partitions (partition.FollowerChanges, through
//     partition.Config.OnFollowers, from the image-apply goroutine); it
//     touches only the fetchers of the leaders named, starting, reshaping
//     and stopping them, and never blocks on the network.
//   - Each fetcher is one goroutine that owns its partitions' fetch state:
//     it sends Fetch requests with this broker's replica id and broker
//     epoch (kmsg over a kgo client dialing the leader), appends the
//     returned batches byte for byte, truncates on DivergingEpoch, and sets
//     the follower high watermark.
//   - Fetches use a fetch session (KIP-227): a full first fetch creates
//     it; then each fetch names only the partitions whose position or
//     leader epoch moved (a partition's position is recomputed only when
//     it changed, partition.Changes) and forgets those no longer fetched.
//     A session error, or any failed round trip, starts over with a full
//     fetch. Config.NoFetchSessions sends sessionless full fetches.
//   - A partition added while a fetch is parked at the leader joins the
//     next fetch; the leader answers the parked one as soon as it knows the
//     partition too (partition.FollowerWatch), so neither waits out
//     MaxWait. A fetch asks for no more than the time left on the earliest
//     partition backoff, and a partition whose leader's metadata is behind
//     ours (it does not know the partition, or that it leads it, yet) backs
//     off for 5 ms at first rather than BackoffInitial.
//   - Replication throttle (KIP-73, Config.Throttle, package throttle):
//     while the follower quota is exceeded, a partition listed for this
//     broker in follower.replication.throttled.replicas that is not caught
//     up (its log end below the leader's last high watermark) is left out
//     of the fetch, and so forgotten by the session until it comes back;
//     the bytes appended for throttled partitions are taken from the
//     quota. Caught-up and unlisted partitions are never held back.
//
// Invariants:
//   - A partition is fetched under the leader epoch of the image that
//     assigned it; every write goes through a partition method that refuses
//     it once that epoch is no longer current, so a fetcher of an old leader
//     or epoch can never write into the log. A new leader or epoch starts a
//     new fetch state (and, for a new leader, a new fetcher).
//   - Truncation happens only where the leader's epoch history says the
//     logs part (KIP-279), never at the high watermark alone (KIP-101), and
//     always before the high watermark of the same response is applied
//     (KAFKA-14704).
//   - The follower's high watermark is the leader's capped at its own log
//     end offset.
//
// ISR changes (AlterPartition, replica.lag.time.max.ms) are not here yet:
// the ISR is what the controller says.
package replica
