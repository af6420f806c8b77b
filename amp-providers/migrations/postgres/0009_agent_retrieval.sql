-- How an agent's turns find passages (mode and fusion weights); '{}' follows the deployment.
ALTER TABLE agents ADD COLUMN retrieval JSONB NOT NULL DEFAULT '{}';
