//! `sqlx::migrate!` embeds `migrations/` when the crate compiles, and Cargo does not know
//! it reads them: a new migration file alone left the old list in the binary until some
//! source file changed. This tells Cargo (sqlx's own advice, `sqlx migrate build-script`).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
