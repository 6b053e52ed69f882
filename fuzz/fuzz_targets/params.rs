#![no_main]
//! Fuzz target: `servicecatalog::fuzzing::params`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| servicecatalog::fuzzing::params(data));
