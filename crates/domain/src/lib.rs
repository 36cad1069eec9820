//! Switchboard domain: aggregates as plain data with decide and evolve (being written).
