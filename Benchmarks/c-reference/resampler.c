// The same speexdsp calls as Patchbay's Resampler, from C, on the same 440 Hz input as audiocore-bench.
// gcc -O2 Benchmarks/c-reference/resampler.c -o /tmp/rs -lspeexdsp -lm && taskset -c 1 /tmp/rs
#include <speex/speex_resampler.h>
#include <stdio.h>
#include <math.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
int main(void){
  short in8[160], in16[320], out[400];
  for(int i=0;i<160;i++) in8[i]=(short)(8000*sin(i*2*M_PI*440/8000));
  for(int i=0;i<320;i++) in16[i]=(short)(8000*sin(i*2*M_PI*440/16000));
  for (int q=3;q<=5;q+=2){
    int err; SpeexResamplerState *up=speex_resampler_init(1,8000,16000,q,&err), *down=speex_resampler_init(1,16000,8000,q,&err);
    double best_up=1e18,best_down=1e18;
    for(int run=0;run<7;run++){
      double t0=now(); for(int k=0;k<100000;k++){spx_uint32_t il=160,ol=400; speex_resampler_process_int(up,0,in8,&il,out,&ol);} double t1=now();
      for(int k=0;k<100000;k++){spx_uint32_t il=320,ol=400; speex_resampler_process_int(down,0,in16,&il,out,&ol);} double t2=now();
      double a=(t1-t0)/1e5,b=(t2-t1)/1e5; if(a<best_up)best_up=a; if(b<best_down)best_down=b;
    }
    printf("q%d up %.0f ns down %.0f ns (best of 7)\n",q,best_up,best_down);
  }
}
