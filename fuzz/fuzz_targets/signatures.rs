#![no_main]
//! Fuzz target: `servicecatalog::fuzzing::signatures`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| servicecatalog::fuzzing::signatures(data));
