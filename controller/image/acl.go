package image

// ACL is one access control entry (Kafka's AclBinding), numbered as Kafka's
// wire protocol numbers its enums: ResourceType (TOPIC 2, GROUP 3, CLUSTER
// 4, TRANSACTIONAL_ID 5, ...), PatternType (LITERAL 3, PREFIXED 4),
// Operation (ALL 2, READ 3, ... IDEMPOTENT_WRITE 12) and Permission (DENY
// 2, ALLOW 3). ID names it in the metadata log (a UUID in text).
type ACL struct {
	ID           string `json:"id"`
	ResourceType int8   `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  int8   `json:"pattern_type"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    int8   `json:"operation"`
	Permission   int8   `json:"permission"`
}

// SameBinding says whether a and b bind the same thing (all but the ID).
func (a ACL) SameBinding(b ACL) bool {
	a.ID = b.ID
	return a == b
}
