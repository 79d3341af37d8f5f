-- Each server's choice of model per kind ("text": text to image, "edit"), among the enabled ones.
CREATE TABLE guild_models (
    guild_id BIGINT NOT NULL,
    kind     TEXT   NOT NULL CHECK (kind IN ('text', 'edit')),
    model    TEXT   NOT NULL,
    PRIMARY KEY (guild_id, kind)
);

-- Each server's monthly spending cap in US dollars (no row: no cap of its own).
CREATE TABLE guild_budgets (
    guild_id   BIGINT PRIMARY KEY,
    budget_usd DOUBLE PRECISION NOT NULL
);

