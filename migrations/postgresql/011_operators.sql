-- Deactivated accounts, invite codes and the audit log, as in migrations/0007_operators.sql.
--
-- Nullable columns without a default are added without rewriting the table.
ALTER TABLE users ADD COLUMN deactivated_at BIGINT;
ALTER TABLE users ADD COLUMN deactivation_reason TEXT;

-- A signup takes a use with one UPDATE ... WHERE uses_left > 0: of signups racing on
-- several nodes for the last use, the row lock lets exactly one through.
CREATE TABLE invites (
    invite_id  BIGINT GENERATED ALWAYS AS IDENTITY (MAXVALUE 9007199254740991),
    code       TEXT    NOT NULL,
    uses_left  INTEGER NOT NULL CHECK (uses_left >= 0),
    expires_at BIGINT,
    created_at BIGINT  NOT NULL,
    created_by BIGINT,
    CONSTRAINT invites_pkey PRIMARY KEY (invite_id),
    CONSTRAINT invites_code_unique UNIQUE (code)
);

-- `target` keeps the object's text as written (JSON, not JSONB, which would reorder its
-- keys), so an export reads the same from either engine. `action` is checked by the code.
CREATE TABLE audit_events (
    event_id BIGINT GENERATED ALWAYS AS IDENTITY (MAXVALUE 9007199254740991),
    at       BIGINT NOT NULL,
    actor_id BIGINT,
    action   TEXT   NOT NULL,
    target   JSON   NOT NULL,
    reason   TEXT,
    CONSTRAINT audit_events_pkey PRIMARY KEY (event_id)
);
