#[track_caller]
#[allow(refining_impl_trait, clippy::type_complexity)]
fn upload(
    body: Vec<u8>,
) -> ::limit_runtime::Limited<
    impl ::limit_runtime::__private::Spec<Output = Result<usize, UploadError>>,
> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    ::core::concat!(::core::module_path!(), "::upload"),
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call_weighted(
            __Limiter,
            || 64,
            ::core::option::Option::None,
            body.len(),
            {
                use ::limit_runtime::__private::{HeavyPanics as _, HeavyRefuses as _};
                (&&::limit_runtime::__private::Heavy::<
                    Result<usize, UploadError>,
                >::PROBE)
                    .on_heavy()
            },
        )
    };
    let __policy = ::limit_runtime::__private::Policy::new();
    ::limit_runtime::Limited::new(
        ::limit_runtime::__private::Machine::new(
            __call,
            move |__call| __call.wait_with(__policy),
            ::limit_runtime::__private::never_front,
            move |__permit| async move {
                let __permit = match __permit {
                    ::core::result::Result::Ok(__permit) => __permit,
                    ::core::result::Result::Err(__refused) => {
                        let __error = __refused.error();
                        return {
                            use ::limit_runtime::__private::{
                                HeavyPanics as _, HeavyRefuses as _,
                            };
                            (&&::limit_runtime::__private::Heavy::<
                                Result<usize, UploadError>,
                            >::PROBE)
                                .refuse(__error)
                        };
                    }
                };
                let body = body;
                #[allow(clippy::diverging_sub_expression)]
                let __ret: Result<usize, UploadError> = {
                    store(&body).await?;
                    Ok(body.len())
                };
                #[allow(unreachable_code)] __ret
            },
        ),
    )
}
#[track_caller]
#[allow(refining_impl_trait, clippy::type_complexity)]
fn upload_or_give_up(
    body: Vec<u8>,
) -> ::limit_runtime::Limited<
    impl ::limit_runtime::__private::Spec<Output = Result<usize, UploadError>>,
> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    ::core::concat!(::core::module_path!(), "::upload_or_give_up"),
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call_weighted(
            __Limiter,
            || 64,
            ::core::option::Option::None,
            body.len(),
            ::limit_runtime::__private::OnHeavy::Refuse,
        )
    };
    let __policy = ::limit_runtime::__private::Policy::new()
        .max_wait(Duration::from_secs(1));
    ::limit_runtime::Limited::new(
        ::limit_runtime::__private::Machine::new(
            __call,
            move |__call| __call.wait_with(__policy),
            ::limit_runtime::__private::never_front,
            move |__permit| async move {
                let __permit = match __permit {
                    ::core::result::Result::Ok(__permit) => __permit,
                    ::core::result::Result::Err(__refused) => {
                        let __error = __refused.error();
                        return ::limit_runtime::__private::refusal(__error);
                    }
                };
                let body = body;
                #[allow(clippy::diverging_sub_expression)]
                let __ret: Result<usize, UploadError> = {
                    store(&body).await?;
                    Ok(body.len())
                };
                #[allow(unreachable_code)] __ret
            },
        ),
    )
}
#[track_caller]
#[allow(refining_impl_trait, clippy::type_complexity)]
fn reserve(
    n: usize,
) -> ::limit_runtime::Limited<impl ::limit_runtime::__private::Spec<Output = ()>> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    ::core::concat!(::core::module_path!(), "::reserve"),
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call_weighted(
            __Limiter,
            || 64,
            ::core::option::Option::None,
            n,
            {
                use ::limit_runtime::__private::{HeavyPanics as _, HeavyRefuses as _};
                (&&::limit_runtime::__private::Heavy::<()>::PROBE).on_heavy()
            },
        )
    };
    let __policy = ::limit_runtime::__private::Policy::new();
    ::limit_runtime::Limited::new(
        ::limit_runtime::__private::Machine::new(
            __call,
            move |__call| __call.wait_with(__policy),
            ::limit_runtime::__private::never_front,
            move |__permit| async move {
                let __permit = match __permit {
                    ::core::result::Result::Ok(__permit) => __permit,
                    ::core::result::Result::Err(__refused) => {
                        let __error = __refused.error();
                        return {
                            use ::limit_runtime::__private::{
                                HeavyPanics as _, HeavyRefuses as _,
                            };
                            (&&::limit_runtime::__private::Heavy::<()>::PROBE)
                                .refuse(__error)
                        };
                    }
                };
                let n = n;
                {
                    fill(n).await;
                }
            },
        ),
    )
}
