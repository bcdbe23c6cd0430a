// Package console is the web console every node serves at / on its HTTP
// endpoint (--http-listen): read-only pages of the cluster for operators,
// rendered on the server with html/template from files embedded in the
// binary (no Node toolchain, no CDN: it works offline).
//
//	/                  overview: brokers (address, rack, fenced, alive,
//	                   leaders and replicas), the controller quorum (leader,
//	                   lag, last contact), counts of topics and partitions
//	/topics            topics: partitions, replication factor,
//	                   under-replicated partitions, size
//	/topics/NAME       a topic: each partition's leader, replicas, ISR,
//	                   offsets and size; the topic's configs and their source
//	/groups            consumer groups: state, members, protocol
//	/groups/NAME       a group: members and their assignment; committed
//	                   offset, end offset and lag per partition
//	/api/...           the same data as JSON (/api/overview, /api/topics,
//	                   /api/topics/NAME, /api/groups, /api/groups/NAME)
//	/static/...        the style sheet and the script
//
// # Where the data comes from
//
// What the node knows itself comes first: its metadata image (brokers,
// racks, fencing, topics, placement, ISR, the topic configs set on a
// topic). A broker has the image it applied, a controller its own.
// Everything else is asked of the cluster with a franz-go client
// (Collector): log offsets (ListOffsets), sizes (DescribeLogDirs), configs
// with their source (DescribeConfigs), groups and their lag, the quorum
// (DescribeQuorum). A broker is alive when the image has it unfenced and
// its listener accepts a connection (Probe), so a stopped broker shows as
// not alive at the next refresh, before the controller fences it.
//
// Each page's collection is bounded (Config.Timeout); what failed or ran
// out of time is listed on the page (Page.Errors) next to what was
// collected, never a hung page.
//
// # Live updates
//
// The first view is rendered on the server, so a browser without script
// (or `chromium --dump-dom`) sees the data. The script then fetches the
// page's main part again every Config.RefreshPeriod (the same URL with
// ?part=main, rendered by the same template) and swaps it in: one
// template per page, no second renderer in JavaScript.
package console
