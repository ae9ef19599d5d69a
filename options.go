package jobs

// RepositoryOption configures a repository constructor such as
// [NewBunRepository] or [NewMemoryRepository].
type RepositoryOption func(*repoConfig)

// DefaultMaxPayloadBytes is the default size limit of a job's payload and of
// its result: 1 MiB.
const DefaultMaxPayloadBytes = 1 << 20

type repoConfig struct {
	maxPayload int
}

// WithMaxPayloadBytes sets the size limit of a job's payload and of its
// result, in bytes. Create refuses a larger payload and Finish a larger
// result with [ErrTooLarge]. The default is [DefaultMaxPayloadBytes]; n must
// be at least 1.
func WithMaxPayloadBytes(n int) RepositoryOption {
	return func(c *repoConfig) { c.maxPayload = n }
}

// newRepoConfig applies the options over the defaults and validates them.
func newRepoConfig(opts []RepositoryOption) (repoConfig, error) {
	c := repoConfig{maxPayload: DefaultMaxPayloadBytes}
	for _, o := range opts {
		o(&c)
	}
	if c.maxPayload < 1 {
		return c, invalid("new repository", "max payload bytes %d is not positive", c.maxPayload)
	}
	return c, nil
}
