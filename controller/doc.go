// Package controller is Skein's metadata quorum member: a hashicorp/raft voter
// whose FSM holds the cluster metadata image, and, when it is the Raft
// leader, the active controller that makes every decision.
//
// # State
//
// Raft keeps its log and stable store in <DataDir>/raft/raft.db (BoltDB) and
// snapshots in <DataDir>/raft/snapshots. The FSM (fsm.go) is a pure function
// of the log: each entry is JSON {"term":T,"records":[...]} holding the
// records of ONE decision taken in Raft term T, applied all or nothing
// (metalog.ApplyEntry, copy on write: the next image shares what the entry
// does not change), and the new image is then published (readers only ever
// see immutable images). An entry with an invalid record, or decided in another
// term than its log entry's, is discarded whole, deterministically, on every
// voter. Under the invariants build tag every applied entry is checked
// against the invariants below (invariants_on.go).
// image.Image.Index is the Raft index of the last applied entry. A snapshot is
// the image as JSON; Restore loads it. The FSM also keeps the outcome of the
// latest entries (a bounded window, reset by Restore) to serve brokers
// deltas.
//
// # Records (controller/metalog, aliased in records.go)
//
// All written by the active controller only:
//
//   - InitCluster{cluster_id}: once, by the first leader.
//   - RegisterController{id, host, port}: a voter's Kafka listener, written
//     by each voter when it becomes leader, and for the other voters when
//     they send ControllerRegistration (quorum.go).
//   - UnregisterController{id}: drops the listener of a controller that is
//     no longer in the Raft configuration (RemoveRaftVoter).
//   - RegisterBroker{id, incarnation, host, port, rack}: BrokerRegistration.
//     The broker's epoch is the entry's Raft index; it starts fenced. An
//     unclean restart (PreviousBrokerEpoch not the current registration's
//     epoch) carries, in the same entry, the ChangePartitions taking the
//     broker out of every ISR and ELR (62_broker_registration.go).
//   - FenceBroker{id, epoch} / UnfenceBroker{id, epoch}: session timeout,
//     controlled shutdown, or caught-up heartbeat. Applied only if epoch is
//     the current registration's.
//   - CreateTopic{name, topic_id, configs} + CreatePartition{topic_id,
//     partition, replicas, isr, leader, leader_epoch, partition_epoch}.
//   - ChangePartition{topic_id, partition, leader?, isr?, replicas?, elr?,
//     last_known_elr?, adding?, removing?}: every change bumps
//     partition_epoch; a leader change bumps leader_epoch too. Absent fields
//     are unchanged; isr, elr, last_known_elr, adding and removing may be
//     explicit empty lists ([]). Written by elections (fence, unfence,
//     registration, ElectLeaders, rebalance), AlterPartition, a
//     min.insync.replicas change (ELR cleared), and partition reassignment
//     (replicas, adding, removing: reassign.go).
//   - DeleteTopic{topic_id}.
//   - ConfigChange{resource_type, resource_name, key, value (null: delete)}:
//     a topic's config, the cluster-wide broker default (broker resource
//     ""), or one broker's own dynamic config (broker resource named by its
//     id: image.BrokerOverrides, the replication throttle rates).
//   - ProducerIDBlock{broker, first, size}: advances NextProducerID.
//   - UserScramCredential{name, mechanism, salt, iterations, stored_key,
//     server_key} / RemoveUserScramCredential{name, mechanism}: a user's
//     SCRAM credential (image.ScramUsers), written by
//     AlterUserScramCredentials and, once with InitCluster, by the bootstrap
//     credentials (--add-scram). Never a password or salted password.
//
// # Decisions
//
// Only the active controller decides, one decision at a time (decideMu): it
// reads the latest image, computes the records with pure functions
// (elections.go, placement.go, topics.go), proposes one entry and answers
// after the entry is applied. A new leader first waits on a Raft barrier so
// its image holds every earlier entry. Every entry carries the Raft term of
// the leadership that decided it (leaderState.term, read when the term
// starts); the FSM discards, whole, an entry whose term is not its log
// entry's, so a decision read from the image of a leadership since lost is
// never applied after another controller's entries (the proposer answers
// NOT_CONTROLLER). Entries without a term (older logs) apply as before.
// Broker session deadlines and controlled shutdowns are in-memory leader
// state (sessions.go), reset on every leadership change.
//
// Elections (elections.go) follow Kafka with eligible leader replicas
// (KIP-966, bounded by min.insync.replicas): the first live ISR member in
// replica order; else the first live ELR member (ISR [it]); else, where the
// topic's unclean.leader.election.enable allows, the first live replica
// with ISR [it]; else the sole last known leader when ISR and ELR are
// empty; else offline (leader -1). A fenced broker leaves ISRs (the last
// member too) and leaderships in the same entry as its FenceBroker, joining
// the ELR where the ISR falls below min.insync.replicas; a broker that
// registers after an unclean shutdown leaves every ISR and ELR. Preferred
// elections come from ElectLeaders (43_elect_leaders.go) and from the
// periodic leader rebalance (rebalance.go, auto.leader.rebalance.enable),
// which also retries elections of offline partitions; a config change
// retries them at once.
//
// Partition reassignment (KIP-455: 45_, 46_, reassign.go) is recorded in
// the partition: while it moves, its replicas are the target followed by
// the original replicas not in it, with adding and removing sets; the
// decision whose ISR holds the whole target (an AlterPartition, or the
// reassignment itself) completes it in the same record.
//
// ISR changes come only from partition leaders through AlterPartition
// (56_alter_partition.go), checked against the leader and partition epochs
// and the members' liveness and broker epochs; an unfenced broker does not
// rejoin any ISR by itself. The ELR follows every ISR change (elections.go).
//
// Invariants: the ELR is disjoint from the ISR, within the replicas, and
// empty while len(ISR) >= min.insync.replicas; adding and removing are
// disjoint and within the replicas; an ISR is empty only while
// the partition is offline; a leader is always a member of its ISR and of
// its replicas; epochs only grow.
//
// # Serving
//
// Each voter serves the Kafka protocol on Listen (internal/wire), one file
// per API key. Any voter serves ApiVersions and Fetch of the metadata topic
// (01_fetch.go) from its own state: the deltas after the broker's offset
// from the FSM's bounded window of recent entries (fsm.go), or a snapshot
// of the whole image when the broker starts from 0 or is too far behind,
// encoded by controller/metalog (the one package of the metadata log,
// which the broker client and the CLI decode and apply with); the other
// APIs are served by the active
// controller only: other voters forward them there, or answer
// NOT_CONTROLLER when they cannot (quorum.go).
//
// # Quorum
//
// InitialControllers bootstraps the Raft configuration on the first start
// of each listed voter; a node with no Raft state that is not listed waits
// to be added. AddRaftVoter / RemoveRaftVoter change the configuration one
// server at a time, a new server joining as a non-voter until it has caught
// up; DescribeQuorum reports voters, leader, term and progress (quorum.go,
// 55_, 70_, 80_, 81_).
package controller
