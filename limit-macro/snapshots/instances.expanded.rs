#[allow(refining_impl_trait, clippy::type_complexity)]
fn serve(
    &self,
    socket: TcpStream,
) -> ::limit_runtime::Limited<
    impl ::limit_runtime::__private::Spec<Output = io::Result<()>>,
> {
    let __call = ::limit_runtime::__private::Limiter::call_instance(&self.connections)
        .sampled();
    ::limit_runtime::Limited::new(
        ::limit_runtime::__private::Machine::new(
            __call,
            ::limit_runtime::__private::Call::wait,
            ::limit_runtime::__private::AtFront::wait,
            move |__permit| async move {
                let mut __permit = __permit;
                __permit.start();
                let _ = &self;
                let socket = socket;
                let __ret = {
                    #[allow(clippy::diverging_sub_expression)]
                    let __ret: io::Result<()> = { self.handle(socket).await };
                    #[allow(unreachable_code)] __ret
                };
                #[allow(unreachable_code)] __permit.complete(false);
                #[allow(unreachable_code)] __ret
            },
        ),
    )
}
#[allow(refining_impl_trait, clippy::type_complexity)]
fn run(
    &mut self,
) -> ::limit_runtime::Limited<impl ::limit_runtime::__private::Spec<Output = ()>> {
    let __call = ::limit_runtime::__private::Limiter::call_instance(self.limits.clone())
        .sampled();
    ::limit_runtime::Limited::new(
        ::limit_runtime::__private::Machine::new(
            __call,
            ::limit_runtime::__private::Call::wait,
            ::limit_runtime::__private::AtFront::wait,
            move |__permit| async move {
                let mut __permit = __permit;
                __permit.start();
                let _ = &self;
                let __ret = {
                    {
                        self.step().await;
                    }
                };
                #[allow(unreachable_code)] __permit.complete(false);
                #[allow(unreachable_code)] __ret
            },
        ),
    )
}
#[allow(refining_impl_trait, clippy::type_complexity)]
fn query(
    pool: &Limiter,
    sql: &str,
) -> ::limit_runtime::Limited<impl ::limit_runtime::__private::Spec<Output = usize>> {
    let __call = ::limit_runtime::__private::Limiter::call_instance(
            ::core::clone::Clone::clone(&pool),
        )
        .sampled();
    ::limit_runtime::Limited::new(
        ::limit_runtime::__private::Machine::new(
            __call,
            ::limit_runtime::__private::Call::wait,
            ::limit_runtime::__private::AtFront::wait,
            move |__permit| async move {
                let mut __permit = __permit;
                __permit.start();
                let pool = pool;
                let sql = sql;
                let __ret = {
                    #[allow(clippy::diverging_sub_expression)]
                    let __ret: usize = { sql.len() };
                    #[allow(unreachable_code)] __ret
                };
                #[allow(unreachable_code)] __permit.complete(false);
                #[allow(unreachable_code)] __ret
            },
        ),
    )
}
