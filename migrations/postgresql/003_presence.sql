-- Each user's last status and last_active_at, kept between restarts of the cluster.
CREATE TABLE presence (
    user_id BIGINT PRIMARY KEY,
    status TEXT NOT NULL,
    last_active_at BIGINT NOT NULL
);
