//! The anchors: the published adaptive controllers that a new one must beat, each written
//! from its description and defaults (cited in its file), not from its code.
