//! What the GitLab and GitHub test servers share: serving an axum app on 127.0.0.1 from a
//! thread of its own, and injected faults.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::TcpListener;

use axum::Router;

/// A fault to inject into the next requests that match.
#[derive(Clone, Debug)]
pub struct Fault {
    pub method: Option<&'static str>,
    /// The request path ends with this.
    pub path_ends: String,
    pub status: u16,
    pub retry_after: Option<u64>,
    /// Apply the request, then fail (the response is lost).
    pub after: bool,
    pub times: usize,
}

/// Serves `app` on a free port of 127.0.0.1; returns its base URL.
pub fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    url
}

/// Takes the first fault that matches this request (counting its uses down).
pub fn take(faults: &mut VecDeque<Fault>, method: &str, path: &str) -> Option<Fault> {
    let i = faults
        .iter()
        .position(|f| f.method.is_none_or(|m| m == method) && path.ends_with(&f.path_ends))?;
    let f = faults[i].clone();
    if f.times <= 1 {
        faults.remove(i);
    } else {
        faults[i].times -= 1;
    }
    Some(f)
}
