#![no_main]
//! Fuzz target: `servicecatalog::fuzzing::template`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| servicecatalog::fuzzing::template(data));
